using System.Text.Json;
using SharpLens.Models;
using SharpLens.Training;
using SharpLens.Training.LanguageModels;

namespace SharpLens.Organisms;

/// <summary>
/// brown-lm and brown-lm-tiny: small GPT-2s the project trains on the Brown Corpus (a byte-level BPE of 4096 ids
/// trained on its training split), the everyday real-English decoder when no hub model is at hand. Each is trained on
/// first use and cached as a Hugging Face folder under <c>&lt;cache&gt;/organisms/brown-lm-&lt;hash&gt;/</c>; an
/// interrupted first training resumes from its checkpoints, and a process that finds another one training it waits
/// for that one instead of training it twice.
/// </summary>
public static class BrownLanguageModel
{
    public const string Name = "brown-lm", TinyName = "brown-lm-tiny";
    const string RecipeVersion = "5";

    public static IReadOnlyList<string> Names => [Name, TinyName];
    public static bool IsName(string name) => Names.Contains(name, StringComparer.OrdinalIgnoreCase);

    /// <summary>What each named model is trained with.</summary>
    public static LanguageModelSettings Settings(string name) => name.ToLowerInvariant() switch
    {
        // A 4-layer Llama (rotary positions, RMSNorm, SwiGLU), d_model 128: 10,000 steps of 8 windows of 256 tokens,
        // 20.5M tokens. Half the windows repeat their own text at a random period (RepeatFraction), so that induction
        // heads form within this budget: at 3,000 steps and a quarter of the windows repeated (recipe 4) none had formed
        // (best induction score 0.06, no in-context-learning bump). The other half, 10.2M tokens, are about 6.5 passes
        // over Brown's training split. Weight decay 0.01: at 0.1 the norms' gains shrank to 0.2–0.5 and attention stayed
        // nearly uniform (recipe 3). Wall time and losses: README, "Language models on real text".
        Name => new LanguageModelSettings
        {
            Corpus = "brown", Architecture = LanguageModelArchitecture.Llama, Layers = 4, DModel = 128, Heads = 4, Context = 256, VocabSize = 4096,
            Steps = 10000, BatchSize = 8, LearningRate = 3e-3, WarmupSteps = 100, WeightDecay = 0.01, EvaluateEvery = 250, EvaluationWindows = 32,
            CheckpointEvery = 250, Seed = 1337, RepeatFraction = 0.5,
        },
        // A few minutes: for tests and quick looks (same tokenizer as brown-lm).
        TinyName => new LanguageModelSettings
        {
            Corpus = "brown", Architecture = LanguageModelArchitecture.Gpt2, Layers = 2, DModel = 64, Heads = 2, Context = 64, VocabSize = 4096,
            Steps = 400, BatchSize = 8, LearningRate = 5e-3, WarmupSteps = 20, EvaluateEvery = 100, EvaluationWindows = 16, CheckpointEvery = 100, Seed = 1337,
        },
        _ => throw new LanguageModelSettingsException($"'{name}' is not a Brown language model; the named ones are {string.Join(" and ", Names)}."),
    };

    /// <summary>The cache folder of a named model: its name and a hash of its recipe and settings.</summary>
    public static string FolderFor(string name, string? cacheRoot = null)
    {
        var settings = Settings(name);
        string json = JsonSerializer.Serialize(LanguageModelRecord.SettingsOf(settings), Training.Data.TrainingDataJson.Default.DictionaryStringString);
        return OrganismCache.FolderFor(OrganismCache.NameFor(name.ToLowerInvariant(), RecipeVersion, json), cacheRoot);
    }

    /// <summary>True when the named model is already trained and cached.</summary>
    public static bool IsCached(string name, string? cacheRoot = null) => File.Exists(Path.Combine(FolderFor(name, cacheRoot), LanguageModelFolder.RecordFile));

    /// <summary>
    /// The folder of the named model, training it first if it is not cached (<paramref name="progress"/> sees every
    /// step, <paramref name="log"/> the preparation: downloading Brown, training the tokenizer, tokenizing).
    /// </summary>
    public static string EnsureTrained(string name, string? cacheRoot = null, IProgress<TrainingProgress>? progress = null,
        IProgress<string>? log = null, CancellationToken cancellation = default)
    {
        string folder = FolderFor(name, cacheRoot);
        if (IsCached(name, cacheRoot)) return folder;
        Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
        using var held = WaitForLock(folder + ".lock", log, cancellation);
        if (IsCached(name, cacheRoot)) return folder; // another process trained it while this one waited
        var run = new LanguageModelRunOptions { CacheRoot = cacheRoot, Resume = true, Overwrite = true, DeleteCheckpoints = true, Log = log };
        var result = LanguageModelTrainer.Train(Settings(name) with { }, folder, run, progress, cancellation);
        result.Model.Dispose();
        return folder;
    }

    /// <summary>The named model as a <see cref="HookedTransformer"/> (weights processed as <see cref="HookedTransformer.FromPretrained"/> does unless told otherwise).</summary>
    public static HookedTransformer Load(string name, string? cacheRoot = null, WeightProcessingOptions? processing = null,
        IProgress<TrainingProgress>? progress = null, IProgress<string>? log = null)
    {
        var model = HookedTransformer.FromPretrained(EnsureTrained(name, cacheRoot, progress, log), processing: processing);
        return model;
    }

    /// <summary>An exclusive lock file, so two processes never train the same model at once.</summary>
    static FileStream WaitForLock(string path, IProgress<string>? log, CancellationToken cancellation)
    {
        bool told = false;
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException)
            {
                if (!told) log?.Report($"Another process is training this model ({path} is locked); waiting for it.");
                told = true;
                cancellation.ThrowIfCancellationRequested();
                Thread.Sleep(1000);
            }
        }
    }
}
