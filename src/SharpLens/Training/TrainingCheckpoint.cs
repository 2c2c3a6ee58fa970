using System.Globalization;
using System.Text.Json;
using SharpLens.Loading;
using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Training;

/// <summary>
/// A training checkpoint: a folder <c>step-NNNNNN/</c> holding the model in the project's format (<c>config.json</c>,
/// <c>model.safetensors</c> with TransformerLens names, readable by <see cref="LoadModel(string, ModelOptions?)"/> or any safetensors reader),
/// AdamW's steps and moments keyed by parameter name (<c>optimizer.safetensors</c>, see <see cref="NamedAdamW"/>) and
/// <c>trainer.json</c> (step, loss history, batch-generator state), which is what a resumed run needs to continue as if
/// never stopped. Checkpoints written before state was keyed by name hold <c>optimizer.bin</c> (TorchSharp's positional
/// format) instead; they still resume. <c>manifest.json</c> holds every file's size and SHA-256
/// (<see cref="CheckpointManifest"/>): a resumed run checks it and skips a damaged checkpoint for the one before.
/// </summary>
public sealed record TrainingCheckpoint(int Step, string Folder)
{
    public const string ConfigFile = HookedTransformer.ConfigFile, WeightsFile = HookedTransformer.WeightsFile, OptimizerFile = "optimizer.safetensors",
        PositionalOptimizerFile = "optimizer.bin", StateFile = "trainer.json";

    public static string FolderFor(string root, int step) => Path.Combine(root, $"step-{step.ToString("D6", CultureInfo.InvariantCulture)}");

    /// <summary>The complete checkpoints under <paramref name="root"/>, by step; a folder missing a file is skipped.</summary>
    public static IReadOnlyList<TrainingCheckpoint> List(string root)
    {
        if (!Directory.Exists(root)) return [];
        var found = new List<TrainingCheckpoint>();
        foreach (var folder in Directory.EnumerateDirectories(root, "step-*"))
        {
            string name = Path.GetFileName(folder);
            if (!int.TryParse(name["step-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int step)) continue;
            if (new[] { ConfigFile, WeightsFile, StateFile }.All(f => File.Exists(Path.Combine(folder, f))))
                found.Add(new TrainingCheckpoint(step, Path.GetFullPath(folder)));
        }
        return [.. found.OrderBy(c => c.Step)];
    }

    /// <summary>
    /// The newest checkpoint under <paramref name="root"/> at or before <paramref name="maxStep"/> whose files match
    /// its manifest; each one refused on the way is reported to <paramref name="log"/> by name and reason.
    /// </summary>
    public static TrainingCheckpoint? LatestValid(string root, int maxStep, Action<string>? log = null) =>
        CheckpointManifest.Latest(List(root).Where(c => c.Step <= maxStep), c => c.Step, c => c.Folder, log);

    /// <summary>The checkpointed model, built from config.json and model.safetensors.</summary>
    public HookedTransformer LoadModel(ModelOptions? options = null) => LoadModel(Folder, options);

    /// <summary>A model from a folder of config.json and model.safetensors (see <see cref="HookedTransformer.Save"/>).</summary>
    public static HookedTransformer LoadModel(string folder, ModelOptions? options = null) => HookedTransformer.Load(folder, options);

    /// <summary>Copies this checkpoint's weights into <paramref name="model"/>, which must have the same config.</summary>
    public void LoadInto(HookedTransformer model)
    {
        string configPath = Path.Combine(Folder, ConfigFile);
        var config = ModelConfig.FromJson(File.ReadAllText(configPath));
        if (config with { ModelName = model.Config.ModelName } != model.Config)
            throw new CheckpointException(configPath, null, $"describes another model than the one being trained ({model.Config.ModelName}); resume with the settings it was trained with, or use another checkpoint folder.");
        var weights = HookedTransformer.ReadWeights(Path.Combine(Folder, WeightsFile));
        try { model.LoadStateDict(weights); }
        finally { foreach (var w in weights.Values) w.Dispose(); }
    }

    /// <summary>Restores AdamW's state from this checkpoint, by parameter name (or, for old checkpoints, by saved order).</summary>
    internal void LoadOptimizerInto(NamedAdamW optimizer)
    {
        string named = Path.Combine(Folder, OptimizerFile), positional = Path.Combine(Folder, PositionalOptimizerFile);
        if (File.Exists(named)) optimizer.Load(named);
        else if (File.Exists(positional)) optimizer.LoadPositional(positional, Path.Combine(Folder, WeightsFile));
        else throw new FileNotFoundException($"{Folder} has no {OptimizerFile}, so AdamW's moments cannot be restored; delete the folder to resume from an earlier checkpoint.", named);
    }

    /// <summary>Writes a checkpoint folder atomically (a temporary folder renamed into place).</summary>
    internal static TrainingCheckpoint Save(string root, HookedTransformer model, NamedAdamW optimizer, TrainerState state)
    {
        string folder = FolderFor(root, state.Step);
        IO.AtomicFile.WriteFolder(folder, temporary =>
        {
            model.WriteTo(temporary, new Dictionary<string, string> { ["step"] = state.Step.ToString(CultureInfo.InvariantCulture) });
            optimizer.Save(Path.Combine(temporary, OptimizerFile));
            File.WriteAllText(Path.Combine(temporary, StateFile), IO.SharpLensJson.Serialize(state));
            CheckpointManifest.Write(temporary); // last: the hashes of what is now complete
        });
        return new TrainingCheckpoint(state.Step, Path.GetFullPath(folder));
    }

    internal TrainerState ReadState()
    {
        string path = Path.Combine(Folder, StateFile);
        try
        {
            return IO.SharpLensJson.Deserialize<TrainerState>(File.ReadAllText(path))
                ?? throw new JsonException("the file is empty");
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"cannot be read as trainer state ({e.Message}); delete the checkpoint folder to train from an earlier one.");
        }
    }
}

/// <summary>What trainer.json holds: enough to continue a run exactly.</summary>
internal sealed record TrainerState(int Step, long Seed, double[] Losses, EvaluatedLoss[] TestLosses, double ElapsedSeconds, string GeneratorState);
