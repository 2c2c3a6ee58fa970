using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Grokking;

/// <summary>
/// The grokking task of Nanda et al. (2023), "Progress measures for grokking via mechanistic interpretability":
/// inputs <c>a b =</c> with a, b in 0…p−1, the answer (a + b) mod p read at the <c>=</c> position; a 1-layer
/// transformer (d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm, untied embed and unembed); 30% of the
/// p² pairs for training, full batch, AdamW lr 1e-3, weight decay 1.0, betas (0.9, 0.98). Every setting can be changed.
/// </summary>
public sealed record ModularAdditionSettings
{
    public int P { get; init; } = 113;
    /// <summary>Share of all p² pairs used for training; the rest is the test set.</summary>
    public double TrainFraction { get; init; } = 0.3;
    public int DModel { get; init; } = 128;
    public int NHeads { get; init; } = 4;
    public int DHead { get; init; } = 32;
    public int DMlp { get; init; } = 512;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 1.0;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.98;
    public int WarmupSteps { get; init; } = 10;
    /// <summary>
    /// Whether biases are trained (they start at zero). The paper's own model trains its MLP biases and has no others;
    /// TransformerLens's grokking demo freezes every <c>b_*</c> at zero. The full run in the README trained them.
    /// </summary>
    public bool TrainBiases { get; init; } = true;
    public int Steps { get; init; } = 15000;
    /// <summary>Seeds the initial weights.</summary>
    public long Seed { get; init; } = 999;
    /// <summary>Seeds the train/test split.</summary>
    public long DataSeed { get; init; } = 598;
    /// <summary>A checkpoint (and a point of every progress-measure curve) every this many steps.</summary>
    public int CheckpointEvery { get; init; } = 250;
    /// <summary>Test loss is measured every this many steps for the progress bar and the loss curve.</summary>
    public int EvaluateEvery { get; init; } = 50;

    /// <summary>The test loss below which the model counts as having grokked; its first crossing is the grok step.</summary>
    public const double GrokThreshold = 0.1;

    /// <summary>
    /// A variant that groks in a few hundred steps (under a minute on two idle cores): p = 31, 70% of the pairs for
    /// training and learning rate 5e-3, which shorten memorisation and the plateau; architecture and weight decay are the paper's.
    /// </summary>
    public static ModularAdditionSettings Fast => new()
    {
        P = 31, TrainFraction = 0.7, LearningRate = 5e-3, Steps = 600, CheckpointEvery = 50, EvaluateEvery = 10,
    };

    /// <summary>The token id of <c>=</c>; ids 0…p−1 are the numbers.</summary>
    [JsonIgnore] public int EqualsToken => P;

    public ModelConfig ModelConfig() => new ModelConfig
    {
        DModel = DModel,
        NLayers = 1,
        NHeads = NHeads,
        DHead = DHead,
        DMlp = DMlp,
        DVocab = P + 1,
        NCtx = 3,
        ActFn = Activation.Relu,
        NormalizationType = Normalization.None,
        PositionalEmbeddingType = PositionalEmbedding.Learned,
        ModelName = $"modular-addition-p{P}",
    }.Validated();

    /// <summary>AdamW with a short linear warmup, then a constant learning rate; no gradient clipping, as in the paper.</summary>
    public TrainingSettings TrainingSettings() => new TrainingSettings
    {
        Steps = Steps,
        BatchSize = TrainCount,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        Beta1 = Beta1,
        Beta2 = Beta2,
        WarmupSteps = WarmupSteps,
        Schedule = LearningRateSchedule.Constant,
        MaxGradNorm = null,
        Seed = Seed,
    }.Validated();

    [JsonIgnore] public int TrainCount => (int)Math.Round(TrainFraction * P * P);

    public ModularAdditionSettings Validated()
    {
        if (P < 3) throw new ArgumentException($"ModularAdditionSettings.P must be at least 3, got {P}.", nameof(P));
        if (P % 2 == 0) throw new ArgumentException($"ModularAdditionSettings.P must be odd (a prime in the paper) so every frequency has a cos and a sin; got {P}.", nameof(P));
        if (TrainFraction <= 0 || TrainFraction >= 1)
            throw new ArgumentException($"ModularAdditionSettings.TrainFraction must be in (0, 1), got {TrainFraction}.", nameof(TrainFraction));
        if (CheckpointEvery <= 0) throw new ArgumentException($"ModularAdditionSettings.CheckpointEvery must be positive, got {CheckpointEvery}.", nameof(CheckpointEvery));
        if (EvaluateEvery <= 0) throw new ArgumentException($"ModularAdditionSettings.EvaluateEvery must be positive, got {EvaluateEvery}.", nameof(EvaluateEvery));
        ModelConfig();
        TrainingSettings();
        return this;
    }

    public string ToJson() => IO.SharpLensJson.Serialize(this);
    public static ModularAdditionSettings FromJson(string json) =>
        IO.SharpLensJson.Deserialize<ModularAdditionSettings>(json) ?? throw new JsonException("empty modular-addition settings");
}
