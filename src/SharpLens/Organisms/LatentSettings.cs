using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// The planted-latent organism: a small transformer reads [BOS, x₁ … x_n] and must answer <see cref="Yes"/> when x₁
/// belongs to a fixed secret set S (half of the content tokens), else <see cref="No"/>. The answer is due at the last
/// position, which sees only x_n and its position until attention brings x₁ there: so the latent (x₁ ∈ S) is
/// linearly readable at the last position only after the first attention layer, and not at all from its embedding.
/// </summary>
public sealed record LatentSettings : IOrganismSettings<LatentSettings>
{
    /// <summary>Ids 0 = BOS, 1 = Yes, 2 = No; 3 … Vocab − 1 are content tokens.</summary>
    public int Vocab { get; init; } = 32;
    /// <summary>Content tokens per prompt (n); a prompt is n + 1 tokens, a training sequence n + 2 with the answer.</summary>
    public int Length { get; init; } = 6;
    public int NLayers { get; init; } = 2;
    public int DModel { get; init; } = 32;
    public int NHeads { get; init; } = 2;
    public int DMlp { get; init; } = 64;
    public Normalization Norm { get; init; } = Normalization.LN;
    /// <summary>Seeds the secret set S.</summary>
    public long SetSeed { get; init; } = 7;
    /// <summary>Seeds the initial weights and the training batches.</summary>
    public long Seed { get; init; } = 1;
    public int Steps { get; init; } = 400;
    public int BatchSize { get; init; } = 64;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 20;

    public const int Bos = 0, Yes = 1, No = 2, FirstContent = 3;
    [JsonIgnore] public int PromptLength => Length + 1;
    [JsonIgnore] public int ContentCount => Vocab - FirstContent;

    /// <summary>The secret set S: a seeded half of the content tokens, in increasing order.</summary>
    public int[] SecretSet()
    {
        var rng = new Random((int)SetSeed);
        var content = Enumerable.Range(FirstContent, ContentCount).ToArray();
        rng.Shuffle(content);
        return [.. content.Take(ContentCount / 2).Order()];
    }

    public ModelConfig ModelConfig() => new ModelConfig
    {
        DModel = DModel, NLayers = NLayers, NHeads = NHeads, DHead = DModel / NHeads, DMlp = DMlp,
        DVocab = Vocab, NCtx = Length + 2, ActFn = Activation.Gelu, NormalizationType = Norm,
        PositionalEmbeddingType = PositionalEmbedding.Learned, BosTokenId = Bos, ModelName = $"latent-{NLayers}l",
    }.Validated();

    public TrainingSettings TrainingSettings() => new TrainingSettings
    {
        Steps = Steps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupSteps = WarmupSteps,
        Schedule = LearningRateSchedule.Cosine, Seed = Seed,
    }.Validated();

    public LatentSettings Validated()
    {
        if (Vocab < FirstContent + 2) throw new ArgumentException($"LatentSettings.Vocab must be at least {FirstContent + 2} (BOS, Yes, No and two content tokens), got {Vocab}.", nameof(Vocab));
        if (Length < 2) throw new ArgumentException($"LatentSettings.Length must be at least 2 (the first token and a different last one), got {Length}.", nameof(Length));
        if (DModel % NHeads != 0) throw new ArgumentException($"LatentSettings.DModel ({DModel}) must be a multiple of NHeads ({NHeads}).", nameof(DModel));
        ModelConfig();
        TrainingSettings();
        return this;
    }

    public string ToJson() => IO.SharpLensJson.Serialize(this);
    public static LatentSettings FromJson(string json) =>
        IO.SharpLensJson.Deserialize<LatentSettings>(json) ?? throw new JsonException("empty latent settings");

    /// <summary>Bump when the data or procedure changes, so caches of the old recipe are not reused.</summary>
    const string RecipeVersion = "latent-v1";
    [JsonIgnore] public string CacheName => OrganismCache.NameFor("latent", RecipeVersion, ToJson());
}
