using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// An unpruned attribution graph with circuit-tracer's <c>Graph</c> fields. Nodes, in order:
/// <code>
/// [0, n_f)                              selected features: active_features[selected_features[i]] = (layer, pos, feature)
/// [n_f, n_f + n_layers·n_pos)           error nodes, layer-major: error (l, p) at n_f + l·n_pos + p
/// [.., + n_pos)                         token (embedding) nodes, one per position
/// [.., + n_logits)                      logit nodes, logit_targets order (the most probable first for salient logits)
/// </code>
/// <see cref="AdjacencyMatrix"/> [N, N] float32: row = target, column = source, A[t, s] = direct effect of s on t
/// (a feature's pre-activation, a logit's demeaned value). Rows of error and token nodes are zero.
/// </summary>
public sealed class AttributionGraph(string inputString, Tensor inputTokens, Tensor activeFeatures, Tensor activationValues,
    Tensor selectedFeatures, Tensor adjacency, long[] logitTargets, string[] logitTokens, Tensor logitProbabilities, int nLayers,
    string scan, string[] promptTokens, long vocabSize) : IDisposable
{
    public string InputString { get; } = inputString;
    public Tensor InputTokens { get; } = inputTokens;             // [n_pos] int64
    public Tensor ActiveFeatures { get; } = activeFeatures;       // [n_active, 3] int64 (layer, pos, feature)
    public Tensor ActivationValues { get; } = activationValues;   // [n_active] float32
    public Tensor SelectedFeatures { get; } = selectedFeatures;   // [n_f] int64 indices into ActiveFeatures
    public Tensor AdjacencyMatrix { get; } = adjacency;           // [N, N] float32
    public long[] LogitTargets { get; } = logitTargets;           // vocabulary ids (d_vocab + i for custom targets)
    public string[] LogitTokens { get; } = logitTokens;           // their text
    public Tensor LogitProbabilities { get; } = logitProbabilities; // [n_logits] float32
    public int NLayers { get; } = nLayers;
    public string Scan { get; } = scan;
    public string[] PromptTokens { get; } = promptTokens;         // each token decoded alone
    public long VocabSize { get; } = vocabSize;

    public int NPos => (int)InputTokens.shape[0];
    public int NFeatures => (int)SelectedFeatures.shape[0];
    public int NLogits => LogitTargets.Length;
    public int NNodes => (int)AdjacencyMatrix.shape[0];
    public int ErrorStart => NFeatures;
    public int TokenStart => NFeatures + NLayers * NPos;
    public int LogitStart => TokenStart + NPos;

    /// <summary>The (layer, position, feature) of feature node <paramref name="node"/> (an index below <see cref="NFeatures"/>).</summary>
    public (int Layer, int Pos, long Feature) FeatureOf(int node)
    {
        long a = SelectedFeatures[node].item<long>();
        return ((int)ActiveFeatures[a, 0].item<long>(), (int)ActiveFeatures[a, 1].item<long>(), ActiveFeatures[a, 2].item<long>());
    }

    /// <summary>The node index of feature (layer, pos, feature), or −1 when it is not a node of this graph.</summary>
    public int NodeOf(int layer, int pos, long feature)
    {
        var sel = SelectedFeatures.data<long>().ToArray();
        var act = ActiveFeatures.contiguous().data<long>().ToArray();
        for (int i = 0; i < sel.Length; i++)
        {
            long a = sel[i];
            if (act[3 * a] == layer && act[3 * a + 1] == pos && act[3 * a + 2] == feature) return i;
        }
        return -1;
    }

    internal void MoveOut()
    {
        foreach (var t in new[] { InputTokens, ActiveFeatures, ActivationValues, SelectedFeatures, AdjacencyMatrix, LogitProbabilities }) t.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var t in new[] { InputTokens, ActiveFeatures, ActivationValues, SelectedFeatures, AdjacencyMatrix, LogitProbabilities }) t.Dispose();
    }
}
