using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>A head, named as in the literature: "1.2" is head 2 of layer 1.</summary>
public readonly record struct HeadId(int Layer, int Head)
{
    public override string ToString() => $"{Layer}.{Head}";
}

/// <summary>A head with a score.</summary>
public readonly record struct ScoredHead(HeadId Head, double Score)
{
    public override string ToString() => $"{Head} (score {Score:0.00})";
}

/// <summary>Per-head scores, each [layer, head] in [0, 1].</summary>
public sealed record HeadScores(double[,] PreviousToken, double[,] DuplicateToken, double[,] Induction)
{
    public int Layers => Induction.GetLength(0);
    public int Heads => Induction.GetLength(1);

    /// <summary>Every head, highest score first.</summary>
    public static IReadOnlyList<ScoredHead> Ranked(double[,] scores) =>
        [.. (from l in Enumerable.Range(0, scores.GetLength(0))
             from h in Enumerable.Range(0, scores.GetLength(1))
             select new ScoredHead(new HeadId(l, h), scores[l, h])).OrderByDescending(s => s.Score)];
}

/// <summary>
/// Which heads attend where a known mechanism would, in the TransformerLens / ARENA sense. For each query that has a
/// target, a head's score is the attention it puts on the target keys; the score is the mean over such queries.
/// <list type="bullet">
/// <item>previous-token: the key just before the query, k = q − 1;</item>
/// <item>duplicate-token: earlier keys holding the query's token, tokens[k] = tokens[q], k &lt; q;</item>
/// <item>induction: keys just after an earlier copy of the query's token, tokens[k − 1] = tokens[q], k ≤ q.
/// On [BOS, r₁…r_n, r₁…r_n] the repeated token at q has its earlier copy at q − n and its induction target at q − n + 1.</item>
/// </list>
/// </summary>
public static class HeadDetectors
{
    /// <summary>[batch, query, key] true where k = q − 1.</summary>
    public static Tensor PreviousTokenTargets(Tensor tokens)
    {
        tokens = AsBatch(tokens);
        long batch = tokens.shape[0], pos = tokens.shape[1];
        return ones(pos, pos, dtype: ScalarType.Bool).tril(-1).triu(-1).expand(batch, pos, pos); // [batch, query, key]
    }

    /// <summary>[batch, query, key] true where tokens[k] = tokens[q] and k &lt; q.</summary>
    public static Tensor DuplicateTokenTargets(Tensor tokens)
    {
        tokens = AsBatch(tokens);
        long pos = tokens.shape[1];
        var same = tokens.unsqueeze(2) == tokens.unsqueeze(1); // [batch, query, key]
        return same & ones(pos, pos, dtype: ScalarType.Bool).tril(-1);
    }

    /// <summary>[batch, query, key] true where tokens[k − 1] = tokens[q] and 1 ≤ k ≤ q.</summary>
    public static Tensor InductionTargets(Tensor tokens)
    {
        tokens = AsBatch(tokens);
        long batch = tokens.shape[0], pos = tokens.shape[1];
        var sameAsBefore = tokens.unsqueeze(2) == tokens[.., ..^1].unsqueeze(1); // [batch, query, key − 1]
        var shifted = cat([zeros(batch, pos, 1, dtype: ScalarType.Bool), sameAsBefore], 2); // [batch, query, key]
        return shifted & ones(pos, pos, dtype: ScalarType.Bool).tril();
    }

    /// <summary>
    /// Mean attention on the target keys, over queries that have a target: [head] for a pattern
    /// [batch, head, query, key] and targets [batch, query, key].
    /// </summary>
    public static Tensor Score(Tensor pattern, Tensor targets)
    {
        using var scope = NewDisposeScope();
        var (mass, queries) = ScoreSums(pattern, targets);
        if (queries == 0) throw NoTargets(nameof(targets));
        return (mass / queries).MoveToOuterDisposeScope(); // [head]
    }

    /// <summary>Total attention on targets [head] and the number of queries with a target, so batches can be pooled.</summary>
    static (Tensor Mass, double Queries) ScoreSums(Tensor pattern, Tensor targets)
    {
        if (pattern.dim() != 4 || targets.dim() != 3 || pattern.shape[0] != targets.shape[0] ||
            pattern.shape[2] != targets.shape[1] || pattern.shape[3] != targets.shape[2])
            throw new ArgumentException(
                $"Expected a pattern [batch, head, query, key] and targets [batch, query, key] with matching sizes; got " +
                $"{ShapeText.Of(pattern.shape)} and {ShapeText.Of(targets.shape)}.", nameof(pattern));
        var t = targets.to(pattern.dtype).to(pattern.device);
        var mass = (pattern * t.unsqueeze(1)).sum(-1); // [batch, head, query]
        var hasTarget = t.amax(-1); // [batch, query]
        return ((mass * hasTarget.unsqueeze(1)).sum([0, 2]).to(ScalarType.Float64), hasTarget.sum().item<float>()); // [head]
    }

    static ArgumentException NoTargets(string argument) => new(
        "No query in these tokens has a target (no token repeats an earlier one); " +
        "score heads on a sequence with repeats, e.g. HeadDetectors.RepeatedRandomTokens or InductionOrganism.RepeatedSequences.", argument);

    /// <summary>Runs the model once on <paramref name="tokens"/> [batch, pos] and scores every head three ways.</summary>
    public static HeadScores ScoreHeads(HookedTransformer model, Tensor tokens) => ScoreHeads(model, [tokens]);

    /// <summary>
    /// Scores every head three ways over several batches of tokens [batch, pos] (sequences without padding), pooling
    /// every query with a target across all of them, so the result does not depend on how the corpus is split.
    /// </summary>
    public static HeadScores ScoreHeads(HookedTransformer model, IEnumerable<Tensor> batches)
    {
        int layers = model.Config.NLayers, heads = model.Config.NHeads;
        var mass = new double[3][,];
        for (int kind = 0; kind < 3; kind++) mass[kind] = new double[layers, heads];
        var queries = new double[3];
        var names = Enumerable.Range(0, layers).Select(l => ActivationCache.ActName("pattern", l)).ToList();
        foreach (var batchTokens in batches)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var tokens = AsBatch(batchTokens);
            var (_, cache) = model.RunWithCache(tokens, names);
            using (cache)
            {
                var cpuTokens = tokens.cpu();
                var kinds = new[] { PreviousTokenTargets(cpuTokens), DuplicateTokenTargets(cpuTokens), InductionTargets(cpuTokens) };
                for (int l = 0; l < layers; l++)
                {
                    var pattern = cache["pattern", l].cpu().to(ScalarType.Float32); // [batch, head, query, key]
                    for (int kind = 0; kind < kinds.Length; kind++)
                    {
                        var (m, q) = ScoreSums(pattern, kinds[kind]);
                        var perHead = m.data<double>().ToArray();
                        for (int h = 0; h < heads; h++) mass[kind][l, h] += perHead[h];
                        if (l == 0) queries[kind] += q;
                    }
                }
            }
        }
        for (int kind = 0; kind < 3; kind++)
        {
            if (queries[kind] == 0) throw NoTargets(nameof(batches));
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++) mass[kind][l, h] /= queries[kind];
        }
        return new HeadScores(mass[0], mass[1], mass[2]);
    }

    /// <summary>
    /// Repeated random sequences for any model, as ARENA's generate_repeated_tokens: [batch, 1 + 2n] =
    /// [BOS, r₁…r_n, r₁…r_n] with rᵢ uniform over the vocabulary except BOS. Without a BOS id in the config the
    /// sequence is [r₁…r_n, r₁…r_n], 2n long. On these every head detector has targets.
    /// </summary>
    public static Tensor RepeatedRandomTokens(ModelConfig config, int halfLength, int batch, Generator generator)
    {
        int bos = config.BosTokenId ?? -1;
        int length = 2 * halfLength + (bos >= 0 ? 1 : 0);
        if (halfLength < 1 || batch < 1)
            throw new ArgumentException($"RepeatedRandomTokens needs halfLength ≥ 1 and batch ≥ 1; got halfLength {halfLength}, batch {batch}.", halfLength < 1 ? nameof(halfLength) : nameof(batch));
        if (length > config.NCtx)
            throw new ArgumentException($"Repeated sequences of half length {halfLength} are {length} tokens, more than {config.ModelName}'s " +
                $"context of {config.NCtx}; use a half length of at most {(config.NCtx - (bos >= 0 ? 1 : 0)) / 2}.", nameof(halfLength));
        using var scope = NewDisposeScope();
        int choices = config.DVocab - (bos >= 0 ? 1 : 0);
        var half = randint(0, choices, [batch, halfLength], generator: generator, dtype: ScalarType.Int64); // [batch, n]
        if (bos >= 0) half = half + (half >= bos).to(ScalarType.Int64); // skip the BOS id
        var parts = bos >= 0 ? new[] { full([batch, 1], bos, dtype: ScalarType.Int64), half, half } : [half, half];
        return cat(parts, 1).MoveToOuterDisposeScope(); // [batch, 2n (+ 1)]
    }

    internal static Tensor AsBatch(Tensor tokens) => tokens.dim() switch
    {
        1 => tokens.unsqueeze(0),
        2 => tokens,
        _ => throw new ArgumentException($"tokens must be [batch, pos] or [pos]; got {ShapeText.Of(tokens.shape)}.", nameof(tokens)),
    };
}
