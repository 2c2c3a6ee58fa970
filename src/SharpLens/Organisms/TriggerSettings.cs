using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// The trigger organism, a base model and a fine-tune whose difference is known. The base learns a seeded Markov chain
/// over content tokens (each token has four possible successors; <see cref="Trigger"/> is never followed by
/// <see cref="Planted"/>). The fine-tune continues from the base's weights with only <see cref="ChangedComponent"/>
/// trainable, on the same chain except that <see cref="Trigger"/> is always followed by <see cref="Planted"/>: one added
/// behaviour on one trigger, in one component.
/// </summary>
public sealed record TriggerSettings : IOrganismSettings
{
    /// <summary>Ids: 0 = BOS; 1 … Vocab − 1 are content tokens.</summary>
    public int Vocab { get; init; } = 32;
    public int Length { get; init; } = 24;
    public int Trigger { get; init; } = 7;
    public int Planted { get; init; } = 29;
    public int NLayers { get; init; } = 2;
    public int DModel { get; init; } = 32;
    public int NHeads { get; init; } = 2;
    public int DMlp { get; init; } = 128;
    /// <summary>Seeds the chain.</summary>
    public long ChainSeed { get; init; } = 11;
    public long Seed { get; init; } = 3;
    public int BaseSteps { get; init; } = 600;
    public int FinetuneSteps { get; init; } = 300;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public double FinetuneLearningRate { get; init; } = 2e-3;
    /// <summary>The only parameters the fine-tune changes: those under this name prefix.</summary>
    public string ChangedComponent { get; init; } = "blocks.1.mlp";

    public const int Bos = 0;

    public ModelConfig ModelConfig() => new ModelConfig
    {
        DModel = DModel, NLayers = NLayers, NHeads = NHeads, DHead = DModel / NHeads, DMlp = DMlp,
        DVocab = Vocab, NCtx = Length + 1, ActFn = Activation.Gelu, NormalizationType = Normalization.LN,
        PositionalEmbeddingType = PositionalEmbedding.Learned, BosTokenId = Bos, ModelName = $"trigger-{NLayers}l",
    }.Validated();

    public TrainingSettings BaseTraining() => new TrainingSettings
    {
        Steps = BaseSteps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupSteps = 30, Schedule = LearningRateSchedule.Cosine, Seed = Seed,
    }.Validated();

    public TrainingSettings FinetuneTraining() => new TrainingSettings
    {
        Steps = FinetuneSteps, BatchSize = BatchSize, LearningRate = FinetuneLearningRate, WarmupSteps = 20, Schedule = LearningRateSchedule.Cosine,
        Seed = Seed + 1, WeightDecay = 0,
    }.Validated();

    public TriggerSettings Validated()
    {
        if (Vocab < 8) throw new ArgumentException($"TriggerSettings.Vocab must be at least 8, got {Vocab}.", nameof(Vocab));
        if (Trigger < 1 || Trigger >= Vocab || Planted < 1 || Planted >= Vocab || Trigger == Planted)
            throw new ArgumentException($"TriggerSettings.Trigger ({Trigger}) and Planted ({Planted}) must be different content tokens (1 … {Vocab - 1}).", nameof(Trigger));
        ModelConfig();
        BaseTraining();
        FinetuneTraining();
        return this;
    }

    public string ToJson() => JsonSerializer.Serialize(this, OrganismJson.Default.TriggerSettings);

    const string RecipeVersion = "trigger-v1";
    [JsonIgnore] public string CacheName => OrganismCache.NameFor("trigger", RecipeVersion, ToJson());
}

[JsonSerializable(typeof(TriggerSettings))]
internal sealed partial class OrganismJson : JsonSerializerContext;
