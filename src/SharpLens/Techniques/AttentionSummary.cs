using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>
/// Where one head's attention goes on average, over every query but the first (which can only attend to itself):
/// <paramref name="ToBos"/> is the attention on position 0 (BOS when sequences start with one; many heads park
/// attention there when they have nothing to do), <paramref name="ToSelf"/> on the query's own position,
/// <paramref name="ToPrevious"/> on the position just before, and <paramref name="Entropy"/> the pattern's entropy in nats
/// (0 = all on one key; ln(q + 1) = uniform over the q + 1 visible keys).
/// </summary>
public sealed record HeadAttention(HeadId Head, double ToBos, double ToSelf, double ToPrevious, double Entropy);

/// <summary>A table of <see cref="HeadAttention"/>, one row per head in layer-then-head order.</summary>
public sealed record AttentionSummary(IReadOnlyList<HeadAttention> Rows)
{
    public HeadAttention this[int layer, int head] => Rows.First(r => r.Head == new HeadId(layer, head));

    /// <summary>Column names and one string row per head, for printing.</summary>
    public (string[] Columns, IReadOnlyList<string[]> Cells) ToTable() =>
        (["head", "to BOS", "to self", "to previous", "entropy (nats)"],
         [.. Rows.Select(r => new[] { r.Head.ToString(), $"{r.ToBos:0.000}", $"{r.ToSelf:0.000}", $"{r.ToPrevious:0.000}", $"{r.Entropy:0.000}" })]);

    /// <summary>
    /// Runs the model on each batch of tokens [batch, pos] (no padding) and averages every head's pattern statistics over
    /// all queries from position 1 on, in all batches.
    /// </summary>
    public static AttentionSummary Compute(HookedTransformer model, IEnumerable<Tensor> batches)
    {
        int layers = model.Config.NLayers, heads = model.Config.NHeads;
        var sums = new double[layers, heads, 4];
        double queries = 0;
        var names = Enumerable.Range(0, layers).Select(l => ActivationCache.ActName("pattern", l)).ToList();
        foreach (var batchTokens in batches)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var tokens = HeadDetectors.AsBatch(batchTokens);
            if (tokens.shape[1] < 2)
                throw new ArgumentException($"AttentionSummary needs sequences of at least 2 tokens; got {ShapeText.Of(tokens.shape)}.", nameof(batches));
            var (_, cache) = model.RunWithCache(tokens, names);
            using (cache)
            {
                queries += tokens.shape[0] * (tokens.shape[1] - 1);
                for (int l = 0; l < layers; l++)
                {
                    var p = cache["pattern", l].to(ScalarType.Float64)[.., .., 1..]; // [batch, head, query ≥ 1, key]
                    var stats = stack([
                        p[.., .., .., 0],                                   // to BOS
                        p.diagonal(offset: 1, dim1: -2, dim2: -1),          // to self: query q (row q − 1 here) at key q
                        p.diagonal(offset: 0, dim1: -2, dim2: -1),          // to previous: key q − 1
                        -(p * p.clamp_min(1e-30).log()).sum(-1),            // entropy
                    ], -1).sum([0, 2]).cpu(); // [head, 4]
                    var values = stats.data<double>().ToArray();
                    for (int h = 0; h < heads; h++)
                        for (int s = 0; s < 4; s++) sums[l, h, s] += values[h * 4 + s];
                }
            }
        }
        if (queries == 0) throw new ArgumentException("AttentionSummary was given no token batches.", nameof(batches));
        return new AttentionSummary([.. from l in Enumerable.Range(0, layers)
                                        from h in Enumerable.Range(0, heads)
                                        select new HeadAttention(new HeadId(l, h), sums[l, h, 0] / queries, sums[l, h, 1] / queries,
                                                                 sums[l, h, 2] / queries, sums[l, h, 3] / queries)]);
    }
}
