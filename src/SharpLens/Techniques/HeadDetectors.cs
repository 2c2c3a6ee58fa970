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
        if (pattern.dim() != 4 || targets.dim() != 3 || pattern.shape[0] != targets.shape[0] ||
            pattern.shape[2] != targets.shape[1] || pattern.shape[3] != targets.shape[2])
            throw new ArgumentException(
                $"Expected a pattern [batch, head, query, key] and targets [batch, query, key] with matching sizes; got " +
                $"[{string.Join(", ", pattern.shape)}] and [{string.Join(", ", targets.shape)}].", nameof(pattern));
        using var scope = NewDisposeScope();
        var t = targets.to(pattern.dtype).to(pattern.device);
        var mass = (pattern * t.unsqueeze(1)).sum(-1); // [batch, head, query]
        var hasTarget = t.amax(-1); // [batch, query]
        double queries = hasTarget.sum().item<float>();
        if (queries == 0)
            throw new ArgumentException("No query in these tokens has a target (no token repeats an earlier one); " +
                "score heads on a sequence with repeats, e.g. InductionOrganism.RepeatedSequences.", nameof(targets));
        return ((mass * hasTarget.unsqueeze(1)).sum([0, 2]) / queries).MoveToOuterDisposeScope(); // [head]
    }

    /// <summary>Runs the model once on <paramref name="tokens"/> [batch, pos] and scores every head three ways.</summary>
    public static HeadScores ScoreHeads(HookedTransformer model, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        tokens = AsBatch(tokens);
        int layers = model.Config.NLayers, heads = model.Config.NHeads;
        var names = Enumerable.Range(0, layers).Select(l => ActivationCache.ActName("pattern", l)).ToList();
        var (_, cache) = model.RunWithCache(tokens, names);
        using (cache)
        {
            var cpuTokens = tokens.cpu();
            var kinds = new[] { PreviousTokenTargets(cpuTokens), DuplicateTokenTargets(cpuTokens), InductionTargets(cpuTokens) };
            var result = kinds.Select(_ => new double[layers, heads]).ToArray();
            for (int l = 0; l < layers; l++)
            {
                var pattern = cache["pattern", l].cpu().to(ScalarType.Float32); // [batch, head, query, key]
                for (int kind = 0; kind < kinds.Length; kind++)
                {
                    var perHead = Score(pattern, kinds[kind]).data<float>().ToArray();
                    for (int h = 0; h < heads; h++) result[kind][l, h] = perHead[h];
                }
            }
            return new HeadScores(result[0], result[1], result[2]);
        }
    }

    static Tensor AsBatch(Tensor tokens) => tokens.dim() switch
    {
        1 => tokens.unsqueeze(0),
        2 => tokens,
        _ => throw new ArgumentException($"tokens must be [batch, pos] or [pos]; got [{string.Join(", ", tokens.shape)}].", nameof(tokens)),
    };
}
