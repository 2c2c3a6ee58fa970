using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// The two-hop organism, the shape of Anthropic's Dallas → Texas → Austin: a small transformer learns two lookups,
/// f: A → B (many A to each B, like cities to states) and g: B → C (many B to each C), asked with two relation tokens:
/// <code>
/// [BOS, a, R1] → f(a)        one hop: "the B of a"
/// [BOS, b, R2] → g(b)        one hop: "the C of b"
/// [BOS, a, R2] → g(f(a))     two hops: "the C of a" — through f(a), which the prompt never names
/// </code>
/// Only the answer's prediction is trained. Ids: 0 BOS, 1 R1, 2 R2, then the A, B and C tokens in that order.
/// <para>
/// With <see cref="HeldOutPerB"/> &gt; 0 the two-hop question is never trained for that many A's of every B (the
/// one-hop f(a) still is): a model that answers those held-out A's can only do it by composing f then g, since nothing
/// tied them to their C directly.
/// </para>
/// </summary>
public sealed record TwoHopSettings : IOrganismSettings<TwoHopSettings>
{
    public int NA { get; init; } = 32;
    public int NB { get; init; } = 8;
    public int NC { get; init; } = 4;
    public int NLayers { get; init; } = 2;
    public int DModel { get; init; } = 64;
    public int NHeads { get; init; } = 4;
    public int DMlp { get; init; } = 256;
    /// <summary>Seeds the lookups f and g.</summary>
    public long TableSeed { get; init; } = 3;
    /// <summary>Seeds the initial weights and the training batches.</summary>
    public long Seed { get; init; } = 1;
    public int Steps { get; init; } = 600;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 3e-3;
    public int WarmupSteps { get; init; } = 30;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>A's of every B whose two-hop prompt [BOS, a, R2] is left out of training (the lowest-numbered ones of that B).</summary>
    public int HeldOutPerB { get; init; }
    /// <summary>
    /// Keep the token embeddings at their random initial values, so a's embedding cannot simply hold f(a) or g(f(a)):
    /// with more A's than d_model the lookup a → B has to be computed by an MLP.
    /// </summary>
    public bool FreezeEmbeddings { get; init; }

    public const int Bos = 0, R1 = 1, R2 = 2, FirstA = 3;
    [JsonIgnore] public int FirstB => FirstA + NA;
    [JsonIgnore] public int FirstC => FirstB + NB;
    [JsonIgnore] public int Vocab => FirstC + NC;
    /// <summary>A prompt is [BOS, x, R]; a training sequence adds the answer.</summary>
    public const int PromptLength = 3;

    /// <summary>f as token ids: f[i] is the B token of A token FirstA + i. Each B has NA / NB A's (seeded shuffle).</summary>
    public int[] F() => Assign(NA, NB, TableSeed, FirstB);
    /// <summary>g as token ids: g[j] is the C token of B token FirstB + j. Each C has NB / NC B's.</summary>
    public int[] G() => Assign(NB, NC, TableSeed + 1, FirstC);

    /// <summary>Whether A number <paramref name="aIndex"/> (0-based) is one whose two-hop prompt is held out of training.</summary>
    public bool IsHeldOut(int aIndex) => HeldOutA()[aIndex];

    /// <summary>For every A (0-based): held out of the two-hop training, the <see cref="HeldOutPerB"/> lowest-numbered A's of each B.</summary>
    public bool[] HeldOutA()
    {
        int[] f = F();
        var heldOut = new bool[NA];
        foreach (var group in Enumerable.Range(0, NA).GroupBy(i => f[i]))
            foreach (int i in group.OrderBy(i => i).Take(HeldOutPerB)) heldOut[i] = true;
        return heldOut;
    }

    static int[] Assign(int n, int groups, long seed, int firstTarget)
    {
        var order = Enumerable.Range(0, n).ToArray();
        new Random((int)seed).Shuffle(order);
        var map = new int[n];
        for (int i = 0; i < n; i++) map[order[i]] = firstTarget + i % groups;
        return map;
    }

    public ModelConfig ModelConfig() => new ModelConfig
    {
        DModel = DModel, NLayers = NLayers, NHeads = NHeads, DHead = DModel / NHeads, DMlp = DMlp,
        DVocab = Vocab, NCtx = PromptLength + 1, ActFn = Activation.Gelu, NormalizationType = Normalization.LN,
        PositionalEmbeddingType = PositionalEmbedding.Learned, BosTokenId = Bos, ModelName = $"two-hop-{NLayers}l",
    }.Validated();

    public TrainingSettings TrainingSettings() => new TrainingSettings
    {
        Steps = Steps, BatchSize = BatchSize, LearningRate = LearningRate, WarmupSteps = WarmupSteps, WeightDecay = WeightDecay,
        Schedule = LearningRateSchedule.Cosine, Seed = Seed,
    }.Validated();

    public TwoHopSettings Validated()
    {
        if (NC < 2 || NB < 2 * NC || NB % NC != 0 || NA < 2 * NB || NA % NB != 0)
            throw new ArgumentException($"TwoHopSettings needs NC ≥ 2, NB a multiple of NC with at least two B per C, and NA a multiple of NB with at least two A per B; got NA {NA}, NB {NB}, NC {NC}.", NC < 2 ? nameof(NC) : NB < 2 * NC || NB % NC != 0 ? nameof(NB) : nameof(NA));
        if (HeldOutPerB < 0 || HeldOutPerB >= NA / NB)
            throw new ArgumentException($"TwoHopSettings.HeldOutPerB ({HeldOutPerB}) must be between 0 and one less than the A's per B ({NA / NB}), so every B keeps a trained two-hop prompt.", nameof(HeldOutPerB));
        if (WeightDecay < 0) throw new ArgumentException($"TwoHopSettings.WeightDecay must not be negative, got {WeightDecay}.", nameof(WeightDecay));
        if (DModel % NHeads != 0) throw new ArgumentException($"TwoHopSettings.DModel ({DModel}) must be a multiple of NHeads ({NHeads}).", nameof(DModel));
        ModelConfig();
        TrainingSettings();
        return this;
    }

    public string ToJson() => IO.SharpLensJson.Serialize(this);
    public static TwoHopSettings FromJson(string json) =>
        IO.SharpLensJson.Deserialize<TwoHopSettings>(json) ?? throw new JsonException("empty two-hop settings");

    /// <summary>Bump when the data or procedure changes, so caches of the old recipe are not reused.</summary>
    const string RecipeVersion = "two-hop-v2";
    [JsonIgnore] public string CacheName => OrganismCache.NameFor("two-hop", RecipeVersion, ToJson());
}
