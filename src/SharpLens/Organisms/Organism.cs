using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// The built-in model organisms — small transformers trained here with a known answer — by name. Each is trained on
/// first use (tens of seconds on a CPU, with progress reported) and read from the cache after that
/// (<c>~/.cache/sharplens/organisms/</c>, or $SHARPLENS_CACHE; see <see cref="OrganismCache"/>).
/// <code>
/// using var induction = Organism.Induction();   // 2-layer attention-only model with induction heads
/// var logits = induction.Model.Run(induction.Model.ToTokens([1, 5, 9, 1, 5]));
/// </code>
/// </summary>
public static class Organism
{
    /// <summary>The organisms' names and what each one is.</summary>
    public static IReadOnlyDictionary<string, string> Names { get; } = new Dictionary<string, string>
    {
        ["induction"] = "the tour's 2-layer attention-only induction organism (trained on first use, then cached)",
        ["latent"] = "a 2-layer organism with a planted binary latent: it answers Yes (id 1) when the first token after BOS is in a secret set, else No (id 2) (trained on first use, then cached)",
        [BrownLanguageModel.Name] = "a 4-layer Llama (d_model 128) trained by the project on the Brown Corpus: real English (trained on first use, about 25 minutes on a 2-core CPU, then cached)",
        [BrownLanguageModel.TinyName] = "a 2-layer GPT-2 (d_model 64) trained on the Brown Corpus in a few minutes, for tests and quick looks (trained on first use, then cached)",
    };

    /// <summary>Whether <paramref name="name"/> is a built-in organism (case-sensitive, as the CLI's --model).</summary>
    public static bool IsName(string name) => Names.ContainsKey(name);

    /// <summary>
    /// The induction organism with default settings. When it has to be trained, <paramref name="progress"/> sees every
    /// step; with none given, a line every 10% (step, loss, elapsed, ETA) goes to standard error, so a first run is never silent.
    /// </summary>
    public static InductionOrganism Induction(IProgress<TrainingProgress>? progress = null, string? cacheRoot = null) =>
        InductionOrganism.TrainOrLoad(new InductionSettings(), cacheRoot, progress: progress ?? FirstRunLog("induction", cacheRoot));

    /// <summary>The latent organism with default settings; progress as for <see cref="Induction"/>.</summary>
    public static LatentOrganism Latent(IProgress<TrainingProgress>? progress = null, string? cacheRoot = null) =>
        LatentOrganism.TrainOrLoad(new LatentSettings(), cacheRoot, progress: progress ?? FirstRunLog("latent", cacheRoot));

    /// <summary>Whether the organism <paramref name="name"/> (default settings) is already in the cache, so loading it trains nothing.</summary>
    public static bool IsCached(string name, string? cacheRoot = null) => name switch
    {
        "induction" => IsCached(new InductionSettings(), cacheRoot),
        "latent" => IsCached(new LatentSettings(), cacheRoot),
        BrownLanguageModel.Name or BrownLanguageModel.TinyName => BrownLanguageModel.IsCached(name, cacheRoot),
        _ => throw Unknown(name),
    };

    static bool IsCached(IOrganismSettings settings, string? cacheRoot)
    {
        string folder = OrganismCache.FolderFor(settings.CacheName, cacheRoot);
        string saved = Path.Combine(folder, "settings.json");
        return File.Exists(saved) && File.Exists(Path.Combine(folder, "model.safetensors")) && File.ReadAllText(saved) == settings.ToJson();
    }

    /// <summary>The organism's model (disposing it frees the organism); trained on first use.</summary>
    public static HookedTransformer Load(string name, IProgress<TrainingProgress>? progress = null, string? cacheRoot = null) => name switch
    {
        "induction" => Induction(progress, cacheRoot).Model,
        "latent" => Latent(progress, cacheRoot).Model,
        BrownLanguageModel.Name or BrownLanguageModel.TinyName => BrownLanguageModel.Load(name, cacheRoot, progress: progress ?? FirstRunLog(name, cacheRoot),
            log: new Progress<string>(Console.Error.WriteLine)),
        _ => throw Unknown(name),
    };

    /// <summary>How many training steps a first use of <paramref name="name"/> takes.</summary>
    public static int TrainingSteps(string name) => name switch
    {
        "induction" => new InductionSettings().Steps,
        "latent" => new LatentSettings().Steps,
        BrownLanguageModel.Name or BrownLanguageModel.TinyName => BrownLanguageModel.Settings(name).Steps,
        _ => throw Unknown(name),
    };

    static SharpLensException Unknown(string name) =>
        new($"'{name}' is not a built-in organism; the organisms are: {string.Join(", ", Names.Keys)}.");

    static IProgress<TrainingProgress> FirstRunLog(string name, string? cacheRoot) => new TrainingProgressLog(
        $"Training the {name} organism on first use; it is cached in {OrganismCache.Root(cacheRoot)}/organisms/ afterwards.", Console.Error);
}

/// <summary>
/// Training progress as plain lines: a heading at the first step, then one line per 10% of the steps with the loss,
/// the time so far and the estimated time left. Reports synchronously on the training thread.
/// </summary>
public sealed class TrainingProgressLog(string heading, TextWriter writer, int lines = 10) : IProgress<TrainingProgress>
{
    bool _started;

    public void Report(TrainingProgress p)
    {
        if (!_started)
        {
            _started = true;
            writer.WriteLine(heading);
        }
        int every = Math.Max(1, p.TotalSteps / Math.Max(1, lines));
        if (p.Step % every != 0 && p.Step != p.TotalSteps) return;
        writer.WriteLine(Line(p));
        writer.Flush();
    }

    /// <summary>"  step 300/3000 (10%)  loss 4.123  12.3 s, about 110 s left".</summary>
    public static string Line(TrainingProgress p)
    {
        double seconds = p.Elapsed.TotalSeconds;
        double left = p.Step > 0 ? seconds / p.Step * (p.TotalSteps - p.Step) : double.NaN;
        return string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"  step {p.Step}/{p.TotalSteps} ({100.0 * p.Step / Math.Max(1, p.TotalSteps):0}%)  loss {p.Loss:0.000}  {seconds:0.0} s, about {left:0} s left");
    }
}
