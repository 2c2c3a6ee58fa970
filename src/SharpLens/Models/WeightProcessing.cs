using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>Which of TransformerLens's weight-processing steps to apply; all on by default, as for its pretrained models.</summary>
public sealed record WeightProcessingOptions
{
    /// <summary>Fold each LayerNorm's w and b into the weights that read its output; the norms become LNPre.</summary>
    public bool FoldLayerNorm { get; init; } = true;
    /// <summary>
    /// Remove the d_model mean from everything that writes to the residual stream (W_E, W_pos, W_O, b_O, W_out, b_out),
    /// and, with <see cref="FoldLayerNorm"/>, from the weights that read an LNPre output (W_Q, W_K, W_V, W_in, W_U).
    /// Applied only when every reader of the residual stream is a LayerNorm, which discards that mean anyway.
    /// </summary>
    public bool CenterWritingWeights { get; init; } = true;
    /// <summary>Remove W_U's and b_U's mean over the vocabulary: every logit shifts alike, so log-probs stay.</summary>
    public bool CenterUnembed { get; init; } = true;
    /// <summary>Move b_V into b_O (b_O += Σ_h b_V[h] W_O[h], b_V = 0): attention patterns sum to 1, so the output is the same.</summary>
    public bool FoldValueBiases { get; init; } = true;

    public static WeightProcessingOptions Default => new();
    /// <summary>Every step off: the weights come back unchanged.</summary>
    public static WeightProcessingOptions None => new() { FoldLayerNorm = false, CenterWritingWeights = false, CenterUnembed = false, FoldValueBiases = false };
}

/// <summary>A processed state dict, its config, and the steps that were asked for but did not apply (with why).</summary>
public sealed record ProcessedWeights(ModelConfig Config, Dictionary<string, Tensor> StateDict, IReadOnlyList<string> Skipped);

/// <summary>
/// TransformerLens's default processing of pretrained weights, which changes no log-probability but makes weights
/// easier to read: fold LayerNorm, centre writing weights, centre the unembedding, fold value biases (in that order).
/// Arithmetic is done in float64 and cast back to each tensor's dtype.
/// </summary>
public static class WeightProcessing
{
    /// <summary>A new model with processed weights; the original is untouched.</summary>
    public static HookedTransformer Process(HookedTransformer model, WeightProcessingOptions? options = null)
    {
        var state = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var processed = Process(model.Config, state, options);
        try
        {
            // Built outside any dispose scope: the new model's parameters must outlive this call.
            var result = HookedTransformer.FromStateDict(processed.Config, processed.StateDict, model.Options);
            if (model.TokenizerIfSet is { } tokenizer) result.Tokenizer = tokenizer;
            return result;
        }
        finally
        {
            foreach (var t in processed.StateDict.Values) t.Dispose();
        }
    }

    /// <summary>Processes a state dict (TransformerLens names) of a model with this config; the input tensors are not modified.</summary>
    public static ProcessedWeights Process(ModelConfig config, IReadOnlyDictionary<string, Tensor> stateDict, WeightProcessingOptions? options = null)
    {
        options ??= WeightProcessingOptions.Default;
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dtypes = stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.dtype);
        var w = stateDict.ToDictionary(kv => kv.Key, kv => kv.Value.detach().to(ScalarType.Float64).clone());
        var skipped = new List<string>();
        var cfg = config;

        if (options.FoldLayerNorm) cfg = FoldLayerNorm(cfg, w, centerReaders: options.CenterWritingWeights, skipped);
        if (options.CenterWritingWeights) CenterWritingWeights(cfg, w, skipped);
        if (options.CenterUnembed)
        {
            // tanh(z − c) is not tanh(z) shifted, so with a logit soft cap a common shift would change the log-probs.
            if (cfg.OutputLogitsSoftCap is null) CenterUnembed(w);
            else skipped.Add("CenterUnembed: the logits are soft-capped, and soft-capping does not commute with a common shift.");
        }
        if (options.FoldValueBiases) FoldValueBiases(cfg, w);

        bool changed = options.FoldLayerNorm || options.CenterWritingWeights || options.CenterUnembed || options.FoldValueBiases;
        // Once W_U has been changed apart from W_E, the two are no longer one tied matrix.
        cfg = cfg with { WeightsProcessed = cfg.WeightsProcessed || changed, TiedEmbeddings = cfg.TiedEmbeddings && !changed };
        var result = w.ToDictionary(kv => kv.Key, kv => kv.Value.to(dtypes.GetValueOrDefault(kv.Key, ScalarType.Float32)).MoveToOuterDisposeScope());
        return new ProcessedWeights(cfg, result, skipped);
    }

    /// <summary>
    /// LN(x) W + c = LNPre(x) (w ⊙ W) + (b W + c): each norm's scale moves into the rows of the matrix that reads it
    /// and its bias into that matrix's bias. After LNPre the input has zero mean, so the reader may also lose its
    /// mean over d_model. RMSNorm has only a scale, RMS(x) W = RMSPre(x) (w ⊙ W), and keeps the mean, so its readers
    /// are not centred. Norms after a sublayer (Gemma 2's ln1_post, ln2_post) write to the residual stream and stay.
    /// </summary>
    static ModelConfig FoldLayerNorm(ModelConfig cfg, Dictionary<string, Tensor> w, bool centerReaders, List<string> skipped)
    {
        static bool HasWeights(Normalization n) => n is Normalization.LN or Normalization.RMS;
        static Normalization Folded(Normalization n) => n == Normalization.RMS ? Normalization.RMSPre : Normalization.LNPre;
        bool blocks = HasWeights(cfg.NormalizationType), final = HasWeights(cfg.FinalNormalization);
        if (!blocks && !final)
        {
            skipped.Add($"FoldLayerNorm: the norms are {cfg.NormalizationType}, with no weights to fold.");
            return cfg;
        }
        // With grouped-query attention the key and value weights are stored per key/value head as _W_K, _W_V.
        string kv = cfg.NKeyValueHeads is null ? "" : "_";
        (string W, string b)[] readers = [("W_Q", "b_Q"), ($"{kv}W_K", $"{kv}b_K"), ($"{kv}W_V", $"{kv}b_V")];
        if (blocks)
        {
            bool center = centerReaders && cfg.NormalizationType == Normalization.LN;
            for (int l = 0; l < cfg.NLayers; l++)
            {
                string p = $"blocks.{l}";
                var (lnW, lnB) = TakeNorm(w, $"{p}.ln1");
                foreach (var (weight, bias) in readers)
                {
                    string W = $"{p}.attn.{weight}", b = $"{p}.attn.{bias}";
                    if (lnB is not null) w[b] = Get(w, b) + torch.einsum("m,hmd->hd", lnB, Get(w, W)); // [head, d_head]
                    w[W] = Get(w, W) * lnW[.., TensorIndex.None]; // [head, d_model, d_head]
                    if (center) w[W] = w[W] - w[W].mean([-2], keepdim: true);
                }
                if (cfg.AttnOnly) continue;
                (lnW, lnB) = TakeNorm(w, $"{p}.ln2");
                if (cfg.IsMoe)
                {
                    // The router and every expert read the same normalised input; none of them has an input bias.
                    if (lnB is not null && lnB.abs().max().item<double>() != 0)
                        throw new SharpLensArgumentException("FoldLayerNorm", $"Cannot fold {p}.ln2's bias into a mixture of experts, whose router has no bias; process with FoldLayerNorm = false.");
                    foreach (var reader in MoeReaders(cfg, p))
                    {
                        w[reader] = Get(w, reader) * lnW[.., TensorIndex.None]; // [d_model, ...]
                        if (center) w[reader] = w[reader] - w[reader].mean([0], keepdim: true);
                    }
                    continue;
                }
                FoldInto(w, $"{p}.mlp.W_in", $"{p}.mlp.b_in", lnW, lnB, center);
                // The gate reads the same normalised input; it has no bias, and b_in is added after the product.
                if (cfg.GatedMlp)
                {
                    if (lnB is not null && lnB.abs().max().item<double>() != 0)
                        throw new SharpLensArgumentException("FoldLayerNorm", $"Cannot fold {p}.ln2's bias into a gated MLP, which has no gate bias; process with FoldLayerNorm = false.");
                    w[$"{p}.mlp.W_gate"] = Get(w, $"{p}.mlp.W_gate") * lnW[.., TensorIndex.None]; // [d_model, d_mlp]
                    if (center) w[$"{p}.mlp.W_gate"] = w[$"{p}.mlp.W_gate"] - w[$"{p}.mlp.W_gate"].mean([0], keepdim: true);
                }
            }
        }
        if (final)
        {
            var (lnW, lnB) = TakeNorm(w, "ln_final");
            FoldInto(w, "unembed.W_U", "unembed.b_U", lnW, lnB, centerReaders && cfg.FinalNormalization == Normalization.LN);
        }
        return cfg with
        {
            NormalizationType = blocks ? Folded(cfg.NormalizationType) : cfg.NormalizationType,
            FinalNormalizationType = final ? Folded(cfg.FinalNormalization) : cfg.FinalNormalization,
        };
    }

    /// <summary>The weights that read a mixture of experts' input: the router's W_gate and each expert's W_gate and W_in, [d_model, ...].</summary>
    static IEnumerable<string> MoeReaders(ModelConfig cfg, string block)
    {
        yield return $"{block}.mlp.W_gate";
        for (int e = 0; e < cfg.NumExperts!.Value; e++)
        {
            yield return $"{block}.mlp.experts.{e}.W_gate";
            yield return $"{block}.mlp.experts.{e}.W_in";
        }
    }

    static void FoldInto(Dictionary<string, Tensor> w, string W, string b, Tensor lnW, Tensor? lnB, bool centerReaders)
    {
        if (lnB is not null) w[b] = Get(w, b) + lnB.MatMul(Get(w, W)); // [d_out]
        w[W] = Get(w, W) * lnW[.., TensorIndex.None]; // [d_model, d_out]
        if (centerReaders) w[W] = w[W] - w[W].mean([0], keepdim: true);
    }

    /// <summary>Removes a norm's weight (and bias, which RMSNorm has not) from the state dict and returns them.</summary>
    static (Tensor W, Tensor? B) TakeNorm(Dictionary<string, Tensor> w, string norm)
    {
        var lnW = Get(w, $"{norm}.w");
        var lnB = w.GetValueOrDefault($"{norm}.b");
        w.Remove($"{norm}.w");
        w.Remove($"{norm}.b");
        return (lnW, lnB);
    }

    /// <summary>Every reader of the residual stream subtracts its mean first, so writers need not write it.</summary>
    static void CenterWritingWeights(ModelConfig cfg, Dictionary<string, Tensor> w, List<string> skipped)
    {
        bool IsLayerNorm(Normalization n) => n is Normalization.LN or Normalization.LNPre;
        if (!IsLayerNorm(cfg.NormalizationType) || !IsLayerNorm(cfg.FinalNormalization))
        {
            skipped.Add($"CenterWritingWeights: the residual stream is read by {cfg.NormalizationType} / {cfg.FinalNormalization} norms, " +
                        "which keep its mean, so centring would change the output.");
            return;
        }
        void Center(string name) => w[name] = Get(w, name) - Get(w, name).mean([-1], keepdim: true);
        Center("embed.W_E");
        if (cfg.PositionalEmbeddingType == PositionalEmbedding.Learned) Center("pos_embed.W_pos");
        for (int l = 0; l < cfg.NLayers; l++)
        {
            Center($"blocks.{l}.attn.W_O");
            Center($"blocks.{l}.attn.b_O");
            if (cfg.AttnOnly) continue;
            foreach (var mlp in cfg.IsMoe ? Enumerable.Range(0, cfg.NumExperts!.Value).Select(e => $"blocks.{l}.mlp.experts.{e}") : [$"blocks.{l}.mlp"])
            {
                Center($"{mlp}.W_out");
                Center($"{mlp}.b_out");
            }
        }
    }

    static void CenterUnembed(Dictionary<string, Tensor> w)
    {
        w["unembed.W_U"] = Get(w, "unembed.W_U") - Get(w, "unembed.W_U").mean([-1], keepdim: true); // [d_model, d_vocab]
        w["unembed.b_U"] = Get(w, "unembed.b_U") - Get(w, "unembed.b_U").mean();
    }

    static void FoldValueBiases(ModelConfig cfg, Dictionary<string, Tensor> w)
    {
        string bVName = cfg.NKeyValueHeads is null ? "b_V" : "_b_V";
        int group = cfg.NHeads / cfg.KeyValueHeads;
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"blocks.{l}.attn";
            var bV = Get(w, $"{p}.{bVName}"); // [kv_head, d_head]
            var perQueryHead = group == 1 ? bV : bV.repeat_interleave(group, dim: 0); // [head, d_head]
            w[$"{p}.b_O"] = Get(w, $"{p}.b_O") + torch.einsum("hd,hdm->m", perQueryHead, Get(w, $"{p}.W_O")); // [d_model]
            w[$"{p}.{bVName}"] = torch.zeros_like(bV);
        }
    }

    static Tensor Get(Dictionary<string, Tensor> w, string name) =>
        w.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException(
            $"The state dict has no tensor '{name}', which weight processing needs; is it a state dict of a model with this config (TransformerLens names)?");
}

public partial class HookedTransformer
{
    /// <summary>A copy of this model with TransformerLens's weight processing applied (see <see cref="WeightProcessing"/>).</summary>
    public HookedTransformer ProcessWeights(WeightProcessingOptions? options = null) => WeightProcessing.Process(this, options);
}
