using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>Which nodes and edges a pruned graph keeps, and each node's cumulative influence rank (graph.json's "influence").</summary>
public sealed record PruneResult(Tensor NodeMask, Tensor EdgeMask, Tensor CumulativeScores) : IDisposable
{
    public void Dispose() { NodeMask.Dispose(); EdgeMask.Dispose(); CumulativeScores.Dispose(); }
}

/// <summary>
/// circuit-tracer's graph maths (graph.py). Â = |A| / rowsum|A| (each node's incoming edges sum to 1); influence of
/// every node on the logits, weighted by their probabilities w, is w Â + w Â² + … (the graph is a DAG, so the series
/// ends); pruning keeps the nodes holding <c>node_threshold</c> of the total influence, then the edges holding
/// <c>edge_threshold</c> of the edge scores Â[t, s]·(influence_t + w_t), then drops feature/error nodes left without
/// outgoing edges and features without incoming ones, until nothing changes.
/// </summary>
public static class GraphPruning
{
    public static Tensor NormalizeMatrix(Tensor a)
    {
        var n = a.abs();
        return n / n.sum(1, keepdim: true).clamp_min(1e-10);
    }

    /// <summary>w Â + w Â² + … by repeated products until the vector is zero (error after 1000).</summary>
    public static Tensor Influence(Tensor a, Tensor logitWeights, int maxIter = 1000)
    {
        using var scope = torch.NewDisposeScope();
        var current = logitWeights.MatMul(a);
        var influence = current.clone();
        int iterations = 0;
        while (current.any().item<bool>())
        {
            if (iterations >= maxIter && !torch.isfinite(a).all().item<bool>())
                throw new TranscoderMismatchException("The attribution graph's edge weights include NaN or ∞, so node influence cannot be computed: " +
                    "the model's or the transcoders' weights overflow on this prompt (check them for huge values).");
            if (iterations >= maxIter) throw new SharpLensInternalException($"Influence computation did not converge after {iterations} iterations: the adjacency matrix is not a DAG.");
            current = current.MatMul(a);
            influence += current;
            iterations++;
        }
        return influence.MoveToOuterDisposeScope();
    }

    /// <summary>Logit weights [N]: zeros, the logit probabilities in the last n_logits entries.</summary>
    public static Tensor LogitWeights(AttributionGraph g)
    {
        var w = torch.zeros(g.NNodes);
        w[g.LogitStart..] = g.LogitProbabilities;
        return w;
    }

    /// <summary>The score at which the descending cumulative share of <paramref name="scores"/> reaches <paramref name="threshold"/>.</summary>
    public static float FindThreshold(Tensor scores, double threshold)
    {
        using var scope = torch.NewDisposeScope();
        var sorted = scores.sort(descending: true, stable: true).Values;
        var cumulative = sorted.cumsum(0) / sorted.sum();
        var cum = cumulative.data<float>().ToArray();
        float t = (float)threshold;
        int index = Array.FindIndex(cum, c => c >= t); // searchsorted, left side
        if (index < 0) index = cum.Length;
        index = Math.Min(index, cum.Length - 1);
        return sorted[index].item<float>();
    }


    public static PruneResult Prune(AttributionGraph g, double nodeThreshold = 0.8, double edgeThreshold = 0.98)
    {
        GraphFiles.CheckThreshold(nodeThreshold, "node-threshold");
        GraphFiles.CheckThreshold(edgeThreshold, "edge-threshold");
        using var scope = torch.NewDisposeScope();
        int nKeepAlways = g.NLogits + g.NPos;
        int n = g.NNodes;
        var w = LogitWeights(g);
        var a = g.AdjacencyMatrix;

        var nodeInfluence = Influence(NormalizeMatrix(a), w);
        var nodeMask = nodeInfluence.ge(FindThreshold(nodeInfluence, nodeThreshold));
        nodeMask[(n - nKeepAlways)..] = true;

        var dropped = nodeMask.logical_not();
        var pruned = a.masked_fill(dropped.unsqueeze(1), 0).masked_fill_(dropped.unsqueeze(0), 0);
        var normalizedPruned = NormalizeMatrix(pruned);
        var prunedInfluence = Influence(normalizedPruned, w) + w;
        var edgeScores = normalizedPruned * prunedInfluence[.., TensorIndex.None];
        var edgeMask = edgeScores.ge(FindThreshold(edgeScores.flatten(), edgeThreshold));

        var oldMask = nodeMask.clone();
        int cut = n - nKeepAlways, nf = g.NFeatures;
        void Tighten()
        {
            nodeMask[..cut] = nodeMask[..cut].logical_and(edgeMask[.., ..cut].any(0));
            nodeMask[..nf] = nodeMask[..nf].logical_and(edgeMask[..nf].any(1));
        }
        Tighten();
        while (!nodeMask.eq(oldMask).all().item<bool>())
        {
            oldMask.copy_(nodeMask);
            var gone = nodeMask.logical_not();
            edgeMask.masked_fill_(gone.unsqueeze(1), false).masked_fill_(gone.unsqueeze(0), false);
            Tighten();
        }

        var (sortedScores, sortedIndices) = nodeInfluence.sort(descending: true, stable: true);
        var cumulative = sortedScores.cumsum(0) / sortedScores.sum();
        var finalScores = torch.zeros_like(nodeInfluence);
        finalScores.index_put_(cumulative, sortedIndices);
        return new PruneResult(nodeMask.MoveToOuterDisposeScope(), edgeMask.MoveToOuterDisposeScope(), finalScores.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// circuit-tracer's compute_graph_scores on the unpruned graph. Replacement: token influence / (token + error influence).
    /// Completeness: Σ_n (1 − Σ_err Â[n, err])·(influence_n + w_n) / Σ_n (influence_n + w_n).
    /// </summary>
    public static (double Replacement, double Completeness) Scores(AttributionGraph g)
    {
        using var scope = torch.NewDisposeScope();
        var w = LogitWeights(g);
        var normalized = NormalizeMatrix(g.AdjacencyMatrix);
        var influence = Influence(normalized, w);
        var tokenInfluence = influence[g.TokenStart..g.LogitStart].sum();
        var errorInfluence = influence[g.ErrorStart..g.TokenStart].sum();
        var replacement = tokenInfluence / (tokenInfluence + errorInfluence);
        var nonError = 1 - normalized[.., g.ErrorStart..g.TokenStart].sum(-1);
        var output = influence + w;
        var completeness = (nonError * output).sum() / output.sum();
        return (replacement.item<float>(), completeness.item<float>());
    }
}
