using SharpLens.Native;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>
/// An acausal crosscoder over the same hook of M models (Lindsey et al. 2024; dictionary_learning's <c>CrossCoder</c> and
/// <c>BatchTopKCrossCoder</c>): per-model encoders summed into one code, per-model decoders.
/// <code>
///   x̃^m = (x^m − μ^m) · s^m                       activation normalisation (s^m = target_rms / √Σ_d σ²), when set
///   f   = ReLU( Σ_m x̃^m W_enc^m + b_enc )          L1;  BatchTopK keeps f_i where f_i · c_i > threshold
///   x̂^m = f W_dec^m + b_dec^m, then denormalised
///   c_i = Σ_m ‖W_dec^m_i‖                          CROSSCODER code normalisation (SAE: ‖W_dec_i‖ of all models at once)
/// </code>
/// Tensor names (dictionary_learning's): encoder.weight = W_enc [M, d_in, F], encoder.bias = b_enc [F],
/// decoder.weight = W_dec [M, F, d_in], decoder.bias = b_dec [M, d_in].
/// </summary>
public sealed class CrossCoder : IDisposable
{
    public CrossCoderConfig Config { get; }
    public Parameter W_enc; // [n_models, d_in, d_latent]
    public Parameter b_enc; // [d_latent]
    public Parameter W_dec; // [n_models, d_latent, d_in]
    public Parameter b_dec; // [n_models, d_in]

    /// <summary>Buffers of dictionary_learning's normaliser: target_rms [], activation_mean/std [M, d_in] (NaN when unset), activation_global_scale [M].</summary>
    public Tensor TargetRms { get; private set; }
    public Tensor ActivationMean { get; private set; }
    public Tensor ActivationStd { get; private set; }
    public Tensor ActivationGlobalScale { get; private set; }
    /// <summary>BatchTopK's inference threshold on code-normalised activations (−1 until training estimates it).</summary>
    public Tensor Threshold { get; }
    /// <summary>BatchTopK's current k (training anneals it; the file's <c>k</c> buffer).</summary>
    public int K { get; set; }

    public int NModels => Config.NumLayers;
    public int DIn => Config.ActivationDim;
    public int DLatent => Config.DictSize;
    public bool HasNormalizer => !ActivationMean.isnan().any().item<bool>() && !ActivationStd.isnan().any().item<bool>();

    /// <summary>
    /// A fresh crosscoder, initialised as dictionary_learning's paper runs (same_init_for_all_layers, init_with_transpose):
    /// one random decoder direction per latent, the same for every model, each per-model row of norm
    /// <see cref="CrossCoderConfig.InitNormOrDefault"/>; W_enc = W_decᵀ; biases 0; no normaliser.
    /// </summary>
    public CrossCoder(CrossCoderConfig config, long seed = 0)
    {
        TorchNative.EnsureLoaded();
        Config = config.Validated();
        var (m, d, f) = (config.NumLayers, config.ActivationDim, config.DictSize);
        // Made outside any caller's dispose scope: the crosscoder decides when its tensors are freed.
        Tensor decoder;
        using (var scope = torch.NewDisposeScope())
        {
            var generator = new Generator((ulong)seed);
            var direction = torch.randn(f, d, generator: generator); // [F, d]
            direction = direction / direction.norm(1, keepdim: true) * config.InitNormOrDefault;
            decoder = direction.unsqueeze(0).expand(m, f, d).contiguous().DetachFromDisposeScope(); // [M, F, d]
        }
        W_enc = Keep(new Parameter(decoder.transpose(1, 2).contiguous())); // [M, d, F]
        W_dec = Keep(new Parameter(decoder));
        b_enc = Keep(new Parameter(torch.zeros(f)));
        b_dec = Keep(new Parameter(torch.zeros(m, d)));
        TargetRms = torch.tensor(1.0f).DetachFromDisposeScope();
        ActivationMean = torch.full(m, d, float.NaN).DetachFromDisposeScope();
        ActivationStd = torch.full(m, d, float.NaN).DetachFromDisposeScope();
        ActivationGlobalScale = torch.ones(m).DetachFromDisposeScope();
        Threshold = torch.tensor(-1.0f).DetachFromDisposeScope();
        K = config.K;
    }

    static Parameter Keep(Parameter p)
    {
        p.DetachFromDisposeScope();
        return p;
    }

    /// <summary>
    /// Sets dictionary_learning's normaliser from the activations' per-model mean and std [M, d_in]:
    /// x̃ = (x − μ) · target_rms / √(Σ_d σ² + 1e-8), so the centred activations of each model have RMS norm target_rms.
    /// </summary>
    public void SetNormalizer(Tensor mean, Tensor std, double targetRms)
    {
        if (!mean.shape.SequenceEqual(new long[] { NModels, DIn }) || !std.shape.SequenceEqual(new long[] { NModels, DIn }))
            throw new ArgumentException($"The normaliser's mean and std must be [{NModels}, {DIn}]; got {ShapeText.Of(mean.shape)} and {ShapeText.Of(std.shape)}.", mean.shape.SequenceEqual(new long[] { NModels, DIn }) ? nameof(std) : nameof(mean));
        using var _ = torch.no_grad();
        ActivationMean.copy_(mean);
        ActivationStd.copy_(std);
        TargetRms.fill_(targetRms);
        ActivationGlobalScale.copy_(TargetRms / (ActivationStd.pow(2).sum(-1) + 1e-8).sqrt()); // [M]
    }

    /// <summary>Replaces the normaliser buffers as read from a file (the global scale as stored, not recomputed).</summary>
    internal void LoadNormalizer(Tensor targetRms, Tensor mean, Tensor std, Tensor globalScale)
    {
        using var _ = torch.no_grad();
        TargetRms.copy_(targetRms);
        ActivationMean.copy_(mean);
        ActivationStd.copy_(std);
        ActivationGlobalScale.copy_(globalScale);
    }

    /// <param name="x">[n, M, d_in]</param>
    public Tensor Normalize(Tensor x)
    {
        CheckInput(x);
        if (!HasNormalizer) return x;
        return (x - ActivationMean) * ActivationGlobalScale.unsqueeze(-1); // [n, M, d_in]
    }

    /// <param name="x">[n, M, d_in] in the normalised space.</param>
    public Tensor Denormalize(Tensor x) => HasNormalizer
        ? x / (ActivationGlobalScale.unsqueeze(-1) + 1e-8) + ActivationMean // [n, M, d_in]
        : x;

    /// <summary>c_i, the weight of latent i's activation in the sparsity penalty and in BatchTopK's ranking: [F].</summary>
    public Tensor CodeNormalizationWeights()
    {
        Tensor Crosscoder() => W_dec.norm(2).sum(dim: 0); // Σ_m ‖W_dec^m_i‖: [M, F] → [F]
        Tensor Sae() => W_dec.pow(2).sum([0, 2]).sqrt(); // ‖[W_dec^1_i … W_dec^M_i]‖: [F]
        return Config.CodeNormalization switch
        {
            CodeNormalization.Crosscoder => Crosscoder(),
            CodeNormalization.Sae => Sae(),
            CodeNormalization.Mixed => Config.AlphaSae * Sae() + Config.AlphaCc * Crosscoder(),
            _ => torch.ones(DLatent, dtype: W_dec.dtype, device: W_dec.device), // NONE
        };
    }

    /// <summary>ReLU(Σ_m x̃^m W_enc^m + b_enc) of normalised inputs [n, M, d_in] → [n, F]: the code before any top-k or threshold.</summary>
    public Tensor EncodeReLU(Tensor normalized)
    {
        long n = normalized.shape[0];
        var pre = normalized.reshape(n, NModels * DIn).MatMul(W_enc.reshape(NModels * DIn, DLatent)) + b_enc; // [n, F]: Σ_m x^m W_enc^m
        return pre.relu();
    }

    /// <summary>
    /// The code f [n, F] of raw activations x [n, M, d_in], as dictionary_learning's <c>encode</c>: normalised first;
    /// BatchTopK keeps f_i where f_i · c_i > threshold (inference), or the k·n largest f_i · c_i of the batch
    /// (<paramref name="useThreshold"/> false, as in training).
    /// </summary>
    public Tensor Encode(Tensor x, bool useThreshold = true) => Sparsify(EncodeReLU(Normalize(x)), useThreshold);

    /// <summary>The sparse code from ReLU'd pre-activations [n, F].</summary>
    public Tensor Sparsify(Tensor postRelu, bool useThreshold = true)
    {
        if (Config.Architecture == CrossCoderArchitecture.L1) return postRelu;
        var scaled = postRelu * CodeNormalizationWeights(); // [n, F]
        if (useThreshold) return postRelu * scaled.gt(Threshold).to(postRelu.dtype);
        return BatchTopK(postRelu, scaled, K);
    }

    /// <summary>Keeps the k·n entries of <paramref name="postRelu"/> [n, F] whose code-normalised values are largest over the whole batch.</summary>
    public static Tensor BatchTopK(Tensor postRelu, Tensor scaled, int k)
    {
        var flat = scaled.flatten(); // [n · F]
        var kept = flat.topk((int)Math.Min(flat.shape[0], (long)k * postRelu.shape[0]), sorted: false).indexes; // [k · n]
        return torch.zeros_like(flat).scatter(0, kept, postRelu.flatten().index_select(0, kept)).reshape(postRelu.shape); // [n, F]
    }

    /// <summary>x̂ [n, M, d_in] in the normalised space from a code [n, F]: f W_dec^m + b_dec^m.</summary>
    public Tensor DecodeNormalized(Tensor f) => f.MatMul(W_dec).transpose(0, 1) + b_dec; // [M, n, d] → [n, M, d_in]

    /// <summary>x̂ [n, M, d_in] in the activations' own space.</summary>
    public Tensor Decode(Tensor f) => Denormalize(DecodeNormalized(f));

    /// <summary>Reconstructions x̂ [n, M, d_in] of x [n, M, d_in].</summary>
    public Tensor Forward(Tensor x) => Decode(Encode(x));

    void CheckInput(Tensor x)
    {
        if (x.dim() != 3 || x.shape[1] != NModels || x.shape[2] != DIn)
            throw new ArgumentException($"A crosscoder input is [n, n_models = {NModels}, d_in = {DIn}]; got {ShapeText.Of(x.shape)}.", nameof(x));
    }

    /// <summary>The named tensors, in dictionary_learning's state-dict order and names.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateDict()
    {
        yield return new("target_rms", TargetRms);
        yield return new("activation_mean", ActivationMean);
        yield return new("activation_std", ActivationStd);
        yield return new("activation_global_scale", ActivationGlobalScale);
        yield return new("encoder.weight", W_enc.detach());
        yield return new("encoder.bias", b_enc.detach());
        yield return new("decoder.weight", W_dec.detach());
        yield return new("decoder.bias", b_dec.detach());
        yield return new("code_normalization_id", torch.tensor((long)Config.CodeNormalization));
        if (Config.Architecture == CrossCoderArchitecture.BatchTopK)
        {
            yield return new("k", torch.tensor(K, ScalarType.Int32));
            yield return new("threshold", Threshold);
        }
    }

    public IEnumerable<Parameter> Parameters() => [W_enc, b_enc, W_dec, b_dec];

    public void Dispose()
    {
        foreach (var p in Parameters()) p.Dispose();
        TargetRms.Dispose();
        ActivationMean.Dispose();
        ActivationStd.Dispose();
        ActivationGlobalScale.Dispose();
        Threshold.Dispose();
    }
}
