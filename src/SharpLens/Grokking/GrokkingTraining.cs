using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Grokking;

/// <summary>
/// Trains the modular-addition model into an output folder: <c>settings.json</c>, and <c>checkpoints/step-NNNNNN/</c>
/// every <see cref="ModularAdditionSettings.CheckpointEvery"/> steps. Run it again on the same folder and it resumes
/// from the latest checkpoint (weights, AdamW moments, loss history), so a longer run extends a shorter one.
/// </summary>
public static class GrokkingTraining
{
    public const string SettingsFile = "settings.json", CheckpointsFolder = "checkpoints";

    /// <summary>Trains (or resumes) and returns the trained model with the whole run's loss record.</summary>
    public static (HookedTransformer Model, TrainingRecord Record) TrainOrResume(ModularAdditionSettings settings, ModularAddition data,
        string outFolder, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        Directory.CreateDirectory(outFolder);
        string settingsPath = Path.Combine(outFolder, SettingsFile);
        if (File.Exists(settingsPath))
        {
            // Only the number of steps may change between runs on one folder; anything else would mix two experiments.
            var saved = ModularAdditionSettings.FromJson(File.ReadAllText(settingsPath));
            if (saved with { Steps = settings.Steps } != settings)
                throw new SharpLensFileException(settingsPath, null, $"{settingsPath} holds a run with other settings ({saved.ToJson().ReplaceLineEndings(" ")}); " +
                    "use another --out folder, or the same settings (only --steps may change).");
        }
        IO.AtomicFile.WriteAllText(settingsPath, settings.ToJson());

        var model = new HookedTransformer(settings.ModelConfig(), seed: settings.Seed);
        try
        {
            if (!settings.TrainBiases)
                foreach (var (name, parameter) in model.named_parameters())
                    if (name.Split('.')[^1].TrimStart('_').StartsWith("b_", StringComparison.Ordinal)) parameter.requires_grad = false; // stays at its initial zero (grouped attention's _b_K too)
            var checkpoints = Path.Combine(outFolder, CheckpointsFolder);
            var options = new TrainingRunOptions
            {
                Loss = data.TrainingLoss,
                TestLoss = data.TestLoss,
                EvaluateEvery = settings.EvaluateEvery,
                CheckpointFolder = checkpoints,
                CheckpointSteps = [.. Enumerable.Range(1, settings.Steps / settings.CheckpointEvery).Select(i => i * settings.CheckpointEvery)],
                Resume = true,
            };
            var batch = data.FullBatch();
            var record = Trainer.Train(model, settings.TrainingSettings(), (_, _) => batch, options, progress, cancellation);
            return (model, record);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
