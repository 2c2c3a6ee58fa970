using SharpLens.Models;
using SharpLens.Training.Data;

namespace SharpLens.Training.LanguageModels;

/// <summary>The two decoder layouts a language model can be trained in, each saved as its Hugging Face model_type.</summary>
public enum LanguageModelArchitecture
{
    /// <summary>GPT-2: LayerNorm, learned positions, GELU MLP, biases; saved as model_type "gpt2".</summary>
    Gpt2,
    /// <summary>Llama: RMSNorm, rotary positions, SwiGLU MLP, no biases; saved as model_type "llama".</summary>
    Llama,
}

/// <summary>
/// Everything a language-model training run is, in nanoGPT's terms: the corpus and tokenizer, the model's shape, and
/// the optimisation (AdamW, linear warm-up then cosine decay to <see cref="MinLearningRateFraction"/>, gradient
/// clipping, accumulation). One step trains on <see cref="BatchSize"/> × <see cref="GradientAccumulation"/> windows of
/// <see cref="Context"/> + 1 tokens.
/// </summary>
public sealed record LanguageModelSettings
{
    /// <summary>brown, brown:GENRE[,GENRE], a .jsonl file, a text file or a folder of .txt files (see <see cref="Corpora.TextCorpus"/>).</summary>
    public string Corpus { get; init; } = "brown";
    public LanguageModelArchitecture Architecture { get; init; } = LanguageModelArchitecture.Gpt2;
    public int Layers { get; init; } = 4;
    public int DModel { get; init; } = 256;
    public int Heads { get; init; } = 4;
    /// <summary>Tokens the model sees at once (its n_ctx).</summary>
    public int Context { get; init; } = 256;
    /// <summary>Ids of the byte-level BPE trained on the corpus; null uses GPT-2's tokenizer (50,257 ids).</summary>
    public int? VocabSize { get; init; } = 4096;
    public int Steps { get; init; } = 2000;
    /// <summary>Windows per micro-batch.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Micro-batches whose gradients add up to one step.</summary>
    public int GradientAccumulation { get; init; } = 1;
    public double LearningRate { get; init; } = 1e-3;
    public double MinLearningRateFraction { get; init; } = 0.1;
    public int WarmupSteps { get; init; } = 100;
    public double WeightDecay { get; init; } = 0.1;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.95;
    public double MaxGradNorm { get; init; } = 1.0;
    public long Seed { get; init; } = 1337;
    /// <summary>Measure the validation loss every this many steps (on <see cref="EvaluationWindows"/> windows), and after the last.</summary>
    public int EvaluateEvery { get; init; } = 100;
    public int EvaluationWindows { get; init; } = 32;
    /// <summary>Write a resumable checkpoint every this many steps (and after the last); null writes only the last.</summary>
    public int? CheckpointEvery { get; init; } = 250;
    public double ValidationFraction { get; init; } = 0.05;
    /// <summary>
    /// Share of each step's windows that are a passage of the corpus followed by the same passage again (the window's
    /// first half, repeated). 0, the default, trains on the corpus as it is. A small share teaches in-context copying
    /// (induction heads) within a budget of a few million tokens, where plain text of that length does not.
    /// </summary>
    public double RepeatFraction { get; init; }

    public DocumentSeparators Separators => Architecture == LanguageModelArchitecture.Gpt2 ? DocumentSeparators.Gpt2 : DocumentSeparators.Llama;
    public TokenizerChoice Tokenizer => VocabSize is int v ? TokenizerChoice.Bpe(v) : TokenizerChoice.Gpt2;
    public int WindowsPerStep => BatchSize * GradientAccumulation;
    public long TokensPerStep => (long)WindowsPerStep * Context;

    /// <summary>Checks every number; the message names the command-line flag.</summary>
    public LanguageModelSettings Validated()
    {
        void Positive(long value, string flag) { if (value <= 0) throw new LanguageModelSettingsException($"{flag} must be positive; got {value}."); }
        Positive(Layers, "--layers"); Positive(DModel, "--d-model"); Positive(Heads, "--heads"); Positive(Context, "--context");
        Positive(Steps, "--steps"); Positive(BatchSize, "--batch-size"); Positive(GradientAccumulation, "--grad-accum");
        Positive(EvaluateEvery, "--eval-every"); Positive(EvaluationWindows, "--eval-windows");
        if (CheckpointEvery is int every) Positive(every, "--checkpoint-every");
        if (DModel % Heads != 0) throw new LanguageModelSettingsException($"--d-model {DModel} is not divisible by --heads {Heads}; each head gets d_model / heads dimensions.");
        if (Architecture == LanguageModelArchitecture.Llama && (DModel / Heads) % 2 != 0)
            throw new LanguageModelSettingsException($"--arch llama rotates pairs of dimensions, so d_model / heads must be even; got {DModel}/{Heads} = {DModel / Heads}.");
        if (LearningRate <= 0 || double.IsNaN(LearningRate)) throw new LanguageModelSettingsException($"--lr must be positive; got {LearningRate}.");
        if (WarmupSteps < 0) throw new LanguageModelSettingsException($"--warmup must not be negative; got {WarmupSteps}.");
        if (RepeatFraction is < 0 or >= 1 || double.IsNaN(RepeatFraction)) throw new LanguageModelSettingsException($"--repeat-fraction must be in [0, 1); got {RepeatFraction}.");
        if (ValidationFraction is <= 0 or >= 1) throw new LanguageModelSettingsException($"--validation-fraction must be in (0, 1); got {ValidationFraction}.");
        if (VocabSize is int vocab)
        {
            int minimum = 256 + TokenizedCorpus.SpecialTokensFor(Separators).Count;
            if (vocab < minimum)
                throw new LanguageModelSettingsException($"--vocab-size {vocab} is too small: a byte-level BPE needs 256 byte tokens + {minimum - 256} special token(s) = {minimum} ids before any merge. Give at least {minimum} (4096 suits a small model).");
            if (vocab > 65536) throw new LanguageModelSettingsException($"--vocab-size {vocab} is too large: token shards hold uint16 ids, so at most 65,536.");
        }
        return this;
    }

    /// <summary>The model's shape for a vocabulary of <paramref name="vocab"/> ids.</summary>
    public ModelConfig ModelConfig(int vocab, int bosTokenId, string name)
    {
        int dHead = DModel / Heads;
        var common = new ModelConfig
        {
            DModel = DModel, NLayers = Layers, NHeads = Heads, DHead = dHead, DVocab = vocab, NCtx = Context,
            DMlp = 4 * DModel, InitializerRange = 0.02, BosTokenId = bosTokenId, ModelName = name,
        };
        return Architecture == LanguageModelArchitecture.Gpt2
            ? common with { ActFn = Activation.GeluNew, NormalizationType = Normalization.LN, PositionalEmbeddingType = PositionalEmbedding.Learned }
            : common with
            {
                // SwiGLU with Llama's hidden width: 2/3 of 4·d_model, rounded up to a multiple of 64.
                DMlp = (8 * DModel / 3 + 63) / 64 * 64, ActFn = Activation.Silu, GatedMlp = true, NormalizationType = Normalization.RMS,
                PositionalEmbeddingType = PositionalEmbedding.Rotary, Eps = 1e-5,
            };
    }

    public TrainingSettings TrainingSettings() => new()
    {
        Steps = Steps, BatchSize = WindowsPerStep, LearningRate = LearningRate, WeightDecay = WeightDecay, Beta1 = Beta1, Beta2 = Beta2,
        WarmupSteps = Math.Min(WarmupSteps, Steps), Schedule = LearningRateSchedule.Cosine, MinLearningRateFraction = MinLearningRateFraction,
        MaxGradNorm = MaxGradNorm, Seed = Seed, MicroBatches = GradientAccumulation,
    };
}

/// <summary>A training setting is out of range; the message names its flag.</summary>
public sealed class LanguageModelSettingsException(string message) : SharpLensException(message);
