using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Training.Data;

namespace SharpLens.Training.LanguageModels;

/// <summary>
/// A trained language model on disk, as Hugging Face lays it out:
/// <code>
/// config.json             model_type "gpt2" or "llama", with that family's field names
/// model.safetensors       GPT2LMHeadModel / LlamaForCausalLM tensor names
/// tokenizer.json          the byte-level BPE (absent for GPT-2's own tokenizer)
/// tokenizer_config.json, special_tokens_map.json
/// generation_config.json  bos / eos ids
/// training.json           how it was trained (<see cref="LanguageModelRecord"/>)
/// </code>
/// </summary>
public static class LanguageModelFolder
{
    public const string RecordFile = "training.json";
    static readonly string[] TokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

    /// <summary>Test seam: runs after the weights are written into the temporary folder (a failing writer is simulated here).</summary>
    internal static Action<string>? AfterWeightsWritten;

    /// <summary>Writes the folder atomically: everything goes to a temporary sibling, which is renamed to <paramref name="folder"/> at the end.</summary>
    public static void Write(string folder, HookedTransformer model, LanguageModelArchitecture architecture, TokenizedCorpus data, LanguageModelRecord record)
    {
        OrganismCache.WriteAtomically(folder, temporary =>
        {
            if (architecture == LanguageModelArchitecture.Gpt2) HuggingFaceGpt2.Save(model, temporary);
            else HuggingFaceLlama.Save(model, temporary, data.EosTokenId);
            AfterWeightsWritten?.Invoke(temporary);
            if (data.TokenizerFolder is { } tokenizer)
                foreach (string file in TokenizerFiles)
                    if (File.Exists(Path.Combine(tokenizer, file))) File.Copy(Path.Combine(tokenizer, file), Path.Combine(temporary, file));
            File.WriteAllText(Path.Combine(temporary, "generation_config.json"), new JsonObject
            {
                ["bos_token_id"] = data.BosTokenId,
                ["eos_token_id"] = data.EosTokenId,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(temporary, RecordFile), JsonSerializer.Serialize(record, TrainingDataJson.Default.LanguageModelRecord));
        });
    }

    /// <summary>The record a folder's training.json holds, or null when it has none.</summary>
    public static LanguageModelRecord? ReadRecord(string folder)
    {
        string path = Path.Combine(folder, RecordFile);
        if (!File.Exists(path)) return null;
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), TrainingDataJson.Default.LanguageModelRecord); }
        catch (JsonException e) { throw new CheckpointException(path, null, $"is not a training record ({e.Message})."); }
    }

    /// <summary>
    /// A model to measure, with the folder holding its tokenizer: a folder <c>sharplens train</c> / <c>finetune</c> saved
    /// (Hugging Face layout), or one of the checkpoints it wrote on the way (<c>OUT.checkpoints/step-N</c>: TransformerLens
    /// names, checked against its manifest first). A checkpoint's tokenizer is <paramref name="tokenizerFolder"/>, else
    /// that of the finished folder OUT beside the checkpoints. The tokenizer folder is null for GPT-2's own tokenizer.
    /// </summary>
    public static (HookedTransformer Model, LanguageModelArchitecture Architecture, string? TokenizerFolder, string Name) Open(string folder, string? tokenizerFolder = null)
    {
        if (!Directory.Exists(folder))
            throw new CheckpointException(folder, null, "does not exist; give a folder `sharplens train` saved, or one of its checkpoints (OUT.checkpoints/step-N).");
        if (!IsCheckpoint(folder))
        {
            var architecture = ArchitectureOf(folder);
            var model = HookedTransformer.FromPretrained(folder, processing: WeightProcessingOptions.None);
            return (model, architecture, TokenizerIn(tokenizerFolder ?? folder), Path.GetFileName(Path.GetFullPath(folder)));
        }
        CheckpointManifest.Verify(folder);
        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        string checkpoints = Path.GetDirectoryName(full)!;
        string? output = checkpoints.EndsWith(".checkpoints", StringComparison.Ordinal) ? checkpoints[..^".checkpoints".Length] : null;
        string? tokenizers = tokenizerFolder ?? (output is not null && File.Exists(Path.Combine(output, "config.json")) ? output : null);
        if (tokenizers is null)
            throw new CheckpointException(folder, null, "is a training checkpoint, which holds no tokenizer, and no finished model folder is beside it to take one from; " +
                "give --tokenizer with a folder holding the run's tokenizer.json (the model folder the run saves, or the tokenizer's folder in the cache, <cache>/tokenizers/bpe-…).");
        var loaded = HookedTransformer.Load(folder);
        var kind = loaded.Config.PositionalEmbeddingType == PositionalEmbedding.Rotary ? LanguageModelArchitecture.Llama : LanguageModelArchitecture.Gpt2;
        string name = $"{Path.GetFileName(output ?? checkpoints)}/{Path.GetFileName(full)}";
        return (loaded, kind, TokenizerIn(tokenizers), name);
    }

    /// <summary>A checkpoint <c>sharplens train</c> wrote: a manifest and a TransformerLens config (no Hugging Face model_type).</summary>
    public static bool IsCheckpoint(string folder) =>
        CheckpointManifest.Exists(folder) && File.Exists(Path.Combine(folder, TrainingCheckpoint.OptimizerFile));

    /// <summary>The folder's tokenizer.json, or null (GPT-2's own tokenizer) when it has none.</summary>
    static string? TokenizerIn(string folder) => File.Exists(Path.Combine(folder, "tokenizer.json")) ? Path.GetFullPath(folder) : null;

    /// <summary>Which architecture a Hugging Face folder holds, from its config.json's model_type.</summary>
    public static LanguageModelArchitecture ArchitectureOf(string folder)
    {
        string path = Path.Combine(folder, "config.json");
        string? type;
        try { type = JsonNode.Parse(File.ReadAllText(path))?["model_type"]?.GetValue<string>(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new CheckpointException(path, null, $"is not a JSON object with a string model_type ({e.Message})."); }
        return type switch
        {
            "gpt2" => LanguageModelArchitecture.Gpt2,
            "llama" => LanguageModelArchitecture.Llama,
            _ => throw new LanguageModelSettingsException($"{path} has model_type \"{type}\"; fine-tuning supports gpt2 and llama folders."),
        };
    }
}

/// <summary>training.json: the settings, the corpus, every step's loss, the validation losses, and the wall time.</summary>
public sealed record LanguageModelRecord
{
    public Dictionary<string, string> Settings { get; init; } = [];
    /// <summary>The folder this model was fine-tuned from; null for a model trained from scratch.</summary>
    public string? BaseModel { get; init; }
    public string Corpus { get; init; } = "";
    public long TrainTokens { get; init; }
    public long ValidationTokens { get; init; }
    public long ValidationWords { get; init; }
    public double[] TrainLosses { get; init; } = [];
    public StepLoss[] ValidationLosses { get; init; } = [];
    /// <summary>A fine-tune's base model on the fine-tune's validation split, before training; null for a model trained from scratch.</summary>
    public double? InitialValidationLoss { get; init; }
    /// <summary>Mean next-token loss (nats) on the whole validation split.</summary>
    public double ValidationLoss { get; init; }
    /// <summary>The validation split's total loss per whitespace-separated word (nats).</summary>
    public double ValidationLossPerWord { get; init; }
    public double ElapsedSeconds { get; init; }
    public double TokensPerSecond { get; init; }
    public int? ResumedFrom { get; init; }

    public double Perplexity => Math.Exp(ValidationLoss);
    public double PerplexityPerWord => Math.Exp(ValidationLossPerWord);

    internal static Dictionary<string, string> SettingsOf(LanguageModelSettings s)
    {
        var settings = new Dictionary<string, string>
        {
        ["corpus"] = s.Corpus, ["arch"] = s.Architecture.ToString().ToLowerInvariant(), ["layers"] = $"{s.Layers}", ["d_model"] = $"{s.DModel}",
        ["heads"] = $"{s.Heads}", ["context"] = $"{s.Context}", ["vocab_size"] = s.VocabSize?.ToString() ?? "tokenizer", ["steps"] = $"{s.Steps}",
        ["batch_size"] = $"{s.BatchSize}", ["grad_accum"] = $"{s.GradientAccumulation}", ["lr"] = $"{s.LearningRate:R}", ["warmup"] = $"{s.WarmupSteps}",
        ["min_lr_fraction"] = $"{s.MinLearningRateFraction:R}", ["weight_decay"] = $"{s.WeightDecay:R}", ["beta1"] = $"{s.Beta1:R}", ["beta2"] = $"{s.Beta2:R}",
        ["max_grad_norm"] = $"{s.MaxGradNorm:R}", ["seed"] = $"{s.Seed}", ["validation_fraction"] = $"{s.ValidationFraction:R}",
        };
        // Written only when used, so the records (and cache names) of plain-text runs are what they were before it existed.
        if (s.RepeatFraction > 0) settings["repeat_fraction"] = $"{s.RepeatFraction:R}";
        return settings;
    }
}

/// <summary>A loss measured after <paramref name="Step"/> steps.</summary>
public sealed record StepLoss(int Step, double Loss);
