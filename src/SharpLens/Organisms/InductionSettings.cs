using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// The induction organism: a 2-layer attention-only transformer trained on [BOS, r₁…r_n, r₁…r_n] with random rᵢ.
/// The first half is unpredictable; the second half is predictable only by finding the earlier copy of the current
/// token and reading the token after it, which is what induction heads do.
/// </summary>
public sealed record InductionSettings : IOrganismSettings<InductionSettings>
{
    /// <summary>Token ids 1…Vocab−1 are the random tokens; id 0 is BOS.</summary>
    public int Vocab { get; init; } = 128;
    /// <summary>Length n of the random half; a sequence is 2n + 1 tokens.</summary>
    public int HalfLength { get; init; } = 20;
    /// <summary>Shortest repeat in training; each training sequence repeats a random-length prefix (see <see cref="InductionOrganism.TrainingSequences"/>).</summary>
    public int MinRepeatLength { get; init; } = 4;
    public int NLayers { get; init; } = 2;
    public int DModel { get; init; } = 64;
    public int NHeads { get; init; } = 4;
    public Normalization Norm { get; init; } = Normalization.None;
    /// <summary>Seeds the initial weights and the training batches.</summary>
    public long Seed { get; init; } = 1;
    public int Steps { get; init; } = 3000;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-2;
    public int WarmupSteps { get; init; } = 50;

    public const int Bos = 0;
    [JsonIgnore] public int SequenceLength => 2 * HalfLength + 1;

    public ModelConfig ModelConfig() => new ModelConfig
    {
        DModel = DModel,
        NLayers = NLayers,
        NHeads = NHeads,
        DHead = DModel / NHeads,
        DVocab = Vocab,
        NCtx = SequenceLength,
        AttnOnly = true,
        NormalizationType = Norm,
        PositionalEmbeddingType = PositionalEmbedding.Learned,
        BosTokenId = Bos,
        ModelName = $"induction-{NLayers}l",
    }.Validated();

    public TrainingSettings TrainingSettings() => new TrainingSettings
    {
        Steps = Steps,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        WarmupSteps = WarmupSteps,
        Schedule = LearningRateSchedule.Cosine,
        Seed = Seed,
    }.Validated();

    public InductionSettings Validated()
    {
        if (Vocab < 3) throw new ArgumentException($"InductionSettings.Vocab must be at least 3 (BOS plus two tokens), got {Vocab}.", nameof(Vocab));
        if (HalfLength < 2) throw new ArgumentException($"InductionSettings.HalfLength must be at least 2, got {HalfLength}.", nameof(HalfLength));
        if (MinRepeatLength < 1 || MinRepeatLength > HalfLength)
            throw new ArgumentException($"InductionSettings.MinRepeatLength must be in 1…HalfLength ({HalfLength}), got {MinRepeatLength}.", nameof(MinRepeatLength));
        if (DModel % NHeads != 0) throw new ArgumentException($"InductionSettings.DModel ({DModel}) must be a multiple of NHeads ({NHeads}).", nameof(DModel));
        ModelConfig();
        TrainingSettings();
        return this;
    }

    public string ToJson() => IO.SharpLensJson.Serialize(this);
    public static InductionSettings FromJson(string json) =>
        IO.SharpLensJson.Deserialize<InductionSettings>(json) ?? throw new JsonException("empty induction settings");

    /// <summary>Bump when the training data or procedure changes, so caches of the old recipe are not reused.</summary>
    const string RecipeVersion = "induction-v2";

    [JsonIgnore] public string CacheName => OrganismCache.NameFor("induction", RecipeVersion, ToJson());
}
