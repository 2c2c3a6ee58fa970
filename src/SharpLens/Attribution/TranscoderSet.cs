using TorchSharp;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>The sparsity of a transcoder's features, as circuit-tracer names them in <c>config.yaml</c>.</summary>
public enum TranscoderActivation
{
    /// <summary>a = relu(pre).</summary>
    Relu,
    /// <summary>a = pre · (pre &gt; θ), θ per feature (<c>activation_function.threshold</c>).</summary>
    JumpRelu,
    /// <summary>a = pre where pre is among the k largest of its row, else 0.</summary>
    TopK,
}

/// <summary>
/// The transcoders that replace every MLP of a model, per-layer (PLT, circuit-tracer's <c>TranscoderSet</c>) or
/// cross-layer (CLT, <c>CrossLayerTranscoder</c>), in one layout:
/// <code>
/// pre_l  = x_l W_enc[l]ᵀ + b_enc[l]                     x_l = blocks.l.{feature_input_hook}   [pos, d_model]
/// a_l    = σ(pre_l)                                      [pos, d_transcoder]
/// ŷ_o    = Σ_{l ∈ sources(o)} a_l W_dec[l][:, o − l] + b_dec[o] + x_o S[o]     y_o = blocks.o.{feature_output_hook}
/// </code>
/// A PLT feature read at layer l writes to MLP output l only (W_dec[l] is [d_transcoder, 1, d_model]); a CLT feature
/// writes to every MLP output l..n_layers−1 (W_dec[l] is [d_transcoder, n_layers − l, d_model]). S is the skip
/// connection written as a right-multiplication (a PLT file stores its transpose, a CLT file stores S itself).
/// </summary>
public sealed class TranscoderSet : IDisposable
{
    public bool CrossLayer { get; }
    public int NLayers { get; }
    public long DModel { get; }
    public long DTranscoder { get; }
    public TranscoderActivation Activation { get; }
    /// <summary>k of a TopK set; 0 otherwise.</summary>
    public int K { get; }
    /// <summary>Where features read, relative to <c>blocks.{l}.</c>, TransformerLens names (<c>hook_resid_mid</c>, <c>ln2.hook_normalized</c>).</summary>
    public string FeatureInputHook { get; }
    /// <summary>Where features write, relative to <c>blocks.{l}.</c> (<c>hook_mlp_out</c>, <c>mlp.hook_out</c>).</summary>
    public string FeatureOutputHook { get; }
    /// <summary>circuit-tracer's identifier of the set, written into graph.json's metadata.scan.</summary>
    public string Scan { get; set; }
    /// <summary>The config.yaml the set was loaded from (null for a set built in memory): what a mismatch with a model names.</summary>
    public string? SourcePath { get; set; }
    /// <summary>How errors name the set: its config.yaml when it came from files, else its scan.</summary>
    public string Where => SourcePath ?? Scan;

    public Tensor W_enc;      // [n_layers, d_transcoder, d_model]
    public Tensor b_enc;      // [n_layers, d_transcoder]
    public Tensor b_dec;      // [n_layers, d_model]
    public Tensor[] W_dec;    // W_dec[l]: [d_transcoder, n_out(l), d_model]
    public Tensor? Threshold; // [n_layers, d_transcoder], JumpReLU only
    public Tensor? Skip;      // [n_layers, d_model, d_model]: skip_l = x_l S[l]

    public TranscoderSet(bool crossLayer, Tensor wEnc, Tensor bEnc, Tensor bDec, Tensor[] wDec, TranscoderActivation activation,
        Tensor? threshold, int k, Tensor? skip, string featureInputHook, string featureOutputHook, string scan)
    {
        TorchNative.EnsureLoaded();
        CrossLayer = crossLayer;
        (W_enc, b_enc, b_dec, W_dec, Threshold, Skip) = (wEnc, bEnc, bDec, wDec, threshold, skip);
        NLayers = (int)wEnc.shape[0];
        DTranscoder = wEnc.shape[1];
        DModel = wEnc.shape[2];
        (Activation, K, FeatureInputHook, FeatureOutputHook, Scan) = (activation, k, featureInputHook, featureOutputHook, scan);
        for (int l = 0; l < NLayers; l++)
        {
            long nOut = crossLayer ? NLayers - l : 1;
            if (!wDec[l].shape.SequenceEqual([DTranscoder, nOut, DModel]))
                throw new TranscoderFileException(scan, $"W_dec_{l}",
                    $"has shape {ShapeText.Of(wDec[l].shape)} but a {(crossLayer ? "cross-layer" : "per-layer")} transcoder with d_transcoder = {DTranscoder}, {NLayers} layers and d_model = {DModel} needs [{DTranscoder}, {nOut}, {DModel}] at layer {l}.");
        }
    }

    public bool HasSkip => Skip is not null;

    /// <summary>The first MLP output a feature read at <paramref name="layer"/> writes to, and how many it writes to.</summary>
    public (int First, int Count) Outputs(int layer) => CrossLayer ? (layer, NLayers - layer) : (layer, 1);

    /// <summary>Pre-activations [..., d_transcoder] of layer <paramref name="layer"/>'s features for inputs [..., d_model].</summary>
    public Tensor PreActivations(int layer, Tensor x) => x.MatMul(W_enc[layer].t()) + b_enc[layer];

    /// <summary>σ(pre): the set's activation function, for one layer.</summary>
    public Tensor Activate(int layer, Tensor pre) => Activation switch
    {
        TranscoderActivation.Relu => nn.functional.relu(pre),
        TranscoderActivation.JumpRelu => pre * pre.gt(Threshold![layer]).to(pre.dtype),
        TranscoderActivation.TopK => TopKOf(pre, K),
        _ => throw new SharpLensInternalException($"{Activation} has no case here."),
    };

    internal static Tensor TopKOf(Tensor pre, int k)
    {
        var indices = pre.topk(Math.Min(k, (int)pre.shape[^1]), dim: -1).indexes;
        return pre * torch.zeros_like(pre).scatter_(-1, indices, torch.ones_like(indices, dtype: pre.dtype));
    }

    /// <summary>Feature activations [..., d_transcoder] of one layer.</summary>
    public Tensor Encode(int layer, Tensor x) => Activate(layer, PreActivations(layer, x));

    /// <summary>The skip path x S[layer] [..., d_model], or zeros (kept in x's autograd graph) when the set has none.</summary>
    public Tensor SkipOf(int layer, Tensor x) => Skip is null ? x * 0 : x.MatMul(Skip[layer]);

    /// <summary>
    /// Reconstructions ŷ [n_layers, pos, d_model] of every MLP output from activations a [n_layers, pos, d_transcoder]
    /// and inputs x [n_layers, pos, d_model].
    /// </summary>
    public Tensor Decode(Tensor acts, Tensor inputs)
    {
        using var scope = torch.NewDisposeScope();
        var recon = b_dec.unsqueeze(1).expand(NLayers, acts.shape[1], DModel).clone(); // [n_layers, pos, d_model]
        for (int l = 0; l < NLayers; l++)
        {
            var (first, count) = Outputs(l);
            // [pos, d_tc] × [d_tc, n_out·d_model] → [pos, n_out, d_model]
            var written = acts[l].MatMul(W_dec[l].reshape(DTranscoder, -1)).view(acts.shape[1], count, DModel);
            recon[TensorIndex.Slice(first, first + count)] += written.transpose(0, 1);
        }
        if (Skip is not null) recon += inputs.MatMul(Skip); // [n_layers, pos, d_model] @ [n_layers, d_model, d_model]
        return recon.MoveToOuterDisposeScope();
    }

    /// <summary>Moves every tensor to a dtype (float32 / float64).</summary>
    public TranscoderSet To(ScalarType dtype, Device? device = null)
    {
        Tensor Move(Tensor t) { var moved = t.to(dtype, device ?? t.device); if (!ReferenceEquals(moved, t)) t.Dispose(); return moved; }
        W_enc = Move(W_enc); b_enc = Move(b_enc); b_dec = Move(b_dec);
        for (int l = 0; l < W_dec.Length; l++) W_dec[l] = Move(W_dec[l]);
        if (Threshold is not null) Threshold = Move(Threshold);
        if (Skip is not null) Skip = Move(Skip);
        return this;
    }

    public ScalarType DType => W_enc.dtype;

    public void Dispose()
    {
        W_enc.Dispose(); b_enc.Dispose(); b_dec.Dispose();
        foreach (var d in W_dec) d.Dispose();
        Threshold?.Dispose();
        Skip?.Dispose();
    }
}
