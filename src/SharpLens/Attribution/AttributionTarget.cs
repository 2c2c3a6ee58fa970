using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// What a logit node of an attribution graph measures (circuit-tracer's attribution targets). A vocabulary token's node
/// is its demeaned logit, the unembedding column W_U[:, t] − mean_t′ W_U[:, t′] read at the last position, weighted by
/// the token's probability; a custom target is any direction in the unembedding's input space with a weight of your
/// choosing (a logit difference, a probe), and gets circuit-tracer's virtual vocabulary index d_vocab + its position in
/// the target list.
/// </summary>
public sealed record AttributionTarget
{
    public long? TokenId { get; init; }
    public string? Label { get; init; }
    public double? Weight { get; init; }
    public Tensor? Direction { get; init; } // [d_model]

    /// <summary>The demeaned logit of one vocabulary token, weighted by its probability.</summary>
    public static AttributionTarget Token(long id) => new() { TokenId = id };

    /// <summary>Any direction [d_model] read at the last position after the final norm, with this label and weight.</summary>
    public static AttributionTarget Custom(string label, double weight, Tensor direction) => new() { Label = label, Weight = weight, Direction = direction };

    /// <summary>logit(a) − logit(b): the difference of their unembedding columns, weighted by <paramref name="weight"/>.</summary>
    public static AttributionTarget LogitDifference(HookedTransformer model, long a, long b, double weight = 1.0, string? label = null)
    {
        var wu = model.unembed.W_U.detach();
        return Custom(label ?? $"logit({a})-logit({b})", weight, (wu[.., a] - wu[.., b]).MoveToOuterDisposeScope());
    }
}

/// <summary>The logit nodes of one graph: vocabulary ids (virtual ids for custom targets), labels, weights, vectors.</summary>
public sealed record ResolvedTargets(long[] VocabIds, string[] Labels, Tensor Probabilities, Tensor Vectors)
{
    /// <summary>
    /// circuit-tracer's salient logits: the fewest top tokens whose cumulative probability reaches
    /// <paramref name="desiredProb"/> (searchsorted on the float32 cumulative sum, + 1), at most <paramref name="maxN"/>.
    /// </summary>
    public static ResolvedTargets Salient(ReplacementModel rm, Tensor lastLogits, int maxN, double desiredProb)
    {
        using var scope = torch.NewDisposeScope();
        var probs = lastLogits.to(ScalarType.Float32).softmax(-1); // [d_vocab]
        var (topP, topIdx) = probs.topk(Math.Min(maxN, (int)probs.shape[0]));
        var cum = topP.cumsum(0).data<float>().ToArray();
        float p = (float)desiredProb;
        int index = Array.FindIndex(cum, c => c >= p);
        int cutoff = Math.Min((index < 0 ? cum.Length : index) + 1, cum.Length);
        var ids = topIdx[..cutoff].data<long>().ToArray();
        return FromIds(rm, lastLogits, ids).MoveOut();
    }

    static ResolvedTargets FromIds(ReplacementModel rm, Tensor lastLogits, long[] ids)
    {
        var probs = lastLogits.to(ScalarType.Float32).softmax(-1);
        var idx = torch.tensor(ids);
        var wu = rm.Model.unembed.W_U.detach().to(rm.Transcoders.DType);                      // [d_model, d_vocab]
        var vecs = (wu.index_select(1, idx) - wu.mean([1], keepdim: true)).t().contiguous(); // [k, d_model]
        return new ResolvedTargets(ids, [.. ids.Select(rm.Decode)], probs.index_select(0, idx), vecs);
    }

    /// <summary>The targets a caller listed, in order.</summary>
    public static ResolvedTargets From(ReplacementModel rm, Tensor lastLogits, IReadOnlyList<AttributionTarget> targets)
    {
        if (targets.Count == 0) throw new AttributionArgumentException("targets", "the list of attribution targets is empty; give at least one, or none for the salient logits.");
        using var scope = torch.NewDisposeScope();
        long vocab = lastLogits.shape[0];
        long dModel = rm.Model.Config.DModel;
        var probsAll = lastLogits.to(ScalarType.Float32).softmax(-1);
        var wu = rm.Model.unembed.W_U.detach().to(rm.Transcoders.DType);
        var mean = wu.mean([1]);
        var ids = new long[targets.Count];
        var labels = new string[targets.Count];
        var probs = new List<Tensor>();
        var vecs = new List<Tensor>();
        for (int i = 0; i < targets.Count; i++)
        {
            var t = targets[i];
            if (t.TokenId is long id)
            {
                if (id < 0 || id >= vocab) throw new AttributionArgumentException("targets", $"target {i} is token {id}, outside the vocabulary [0, {vocab - 1}].");
                ids[i] = id; labels[i] = rm.Decode(id);
                probs.Add(probsAll[id].to(ScalarType.Float32).reshape(1));
                vecs.Add(wu[.., id] - mean);
            }
            else
            {
                if (t.Direction is null || t.Weight is null || t.Label is null) throw new AttributionArgumentException("targets", $"target {i} needs a token id, or a label, weight and direction.");
                if (!t.Direction.shape.SequenceEqual([dModel])) throw new AttributionArgumentException("targets", $"target {i} ('{t.Label}') has a direction of shape {ShapeText.Of(t.Direction.shape)}; it must be [d_model = {dModel}].");
                ids[i] = vocab + i; labels[i] = t.Label;
                probs.Add(torch.tensor(new[] { (float)t.Weight.Value }));
                vecs.Add(t.Direction.to(rm.Transcoders.DType).cpu());
            }
        }
        return new ResolvedTargets(ids, labels, torch.cat(probs), torch.stack(vecs)).MoveOut();
    }

    ResolvedTargets MoveOut()
    {
        Probabilities.MoveToOuterDisposeScope();
        Vectors.MoveToOuterDisposeScope();
        return this;
    }

    public int Count => VocabIds.Length;
}
