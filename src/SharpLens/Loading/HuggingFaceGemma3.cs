using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Gemma 3's text model (model_type "gemma3_text"): Gemma 2's sandwich norms, (1 + w) RMSNorms, sqrt(d_model)-scaled
/// embedding and query_pre_attn_scalar, plus
/// <list type="bullet">
/// <item>a per-head (1 + w) RMSNorm on queries and keys before rotation (self_attn.q_norm / k_norm → attn.q_norm.w, attn.k_norm.w);</item>
/// <item>local and global layers: layer_types, or else sliding_window_pattern (default 6), where layer i is global when
/// (i + 1) is a multiple of the pattern and slides a window of sliding_window positions otherwise;</item>
/// <item>their own rotary bases: rope_local_base_freq for local layers (never scaled) and rope_theta, with rope_scaling, for
/// global ones (transformers v5: rope_parameters.sliding_attention and .full_attention);</item>
/// <item>soft caps only when attn_logit_softcapping / final_logit_softcapping are set (null in the released configs).</item>
/// </list>
/// </summary>
public static class HuggingFaceGemma3
{
    public static readonly HuggingFaceFamily Family = new("gemma3_text", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceGemma.Layout(json) with { SandwichNorms = true, QkNorm = true }, HuggingFaceGemma.Tied(json), into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        if (json.Bool("use_bidirectional_attention", false))
            throw json.Problem("use_bidirectional_attention = true (an encoder-style Gemma 3) is not supported: SharpLens's decoders are causal.");
        var cfg = HuggingFaceGemma.ReadConfig(json);
        int dims = cfg.RotaryDimensions;
        HuggingFaceRope.Settings global, local;
        json.Get<double?>("rope_local_base_freq");
        if (HuggingFaceRope.IsPerLayerType(json))
        {
            // transformers v5: rope_parameters.full_attention and .sliding_attention
            global = HuggingFaceRope.ReadLayerType(json, "full_attention", dims, defaultTheta: 1_000_000);
            local = HuggingFaceRope.ReadLayerType(json, "sliding_attention", dims, defaultTheta: 10_000);
        }
        else
        {
            // v4 (or v5 with one set): rope_theta and rope_scaling are the global layers'; local layers use rope_local_base_freq, unscaled.
            global = HuggingFaceRope.Read(json, dims, defaultTheta: 1_000_000);
            local = new HuggingFaceRope.Settings(json.Double("rope_local_base_freq", 10_000), null, null, null);
        }
        if (local.Scaling is not null || local.Llama3 is not null)
            throw json.Problem("rope_parameters.sliding_attention scales the local layers' rotary embedding, which Gemma 3 does not do and SharpLens does not support.");
        cfg = HuggingFaceLlama.WithRope(cfg with { RopeScaling = null, UseNtkByPartsRope = false }, global);

        int window = json.Int("sliding_window", 4096), pattern = json.Int("sliding_window_pattern", json.Int("_sliding_window_pattern", 6));
        if (pattern <= 0) throw json.Problem($"sliding_window_pattern = {pattern} must be positive.");
        double? attnCap = json.Get<double?>("attn_logit_softcapping"), finalCap = json.Get<double?>("final_logit_softcapping");
        return (cfg with
        {
            UseNormalizationBeforeAndAfter = true,
            UseQkNorm = true,
            QkNormPerHead = true,
            AttnScoresSoftCap = attnCap,
            OutputLogitsSoftCap = finalCap,
            AttnScale = Math.Sqrt(json.Double("query_pre_attn_scalar", 256)), // transformers' Gemma3TextConfig default
            UseLocalAttn = true,
            WindowSize = window,
            AttnTypes = HuggingFaceLlama.AttnTypesFromLayerTypes(json, cfg.NLayers)
                ?? [.. Enumerable.Range(0, cfg.NLayers).Select(l => (l + 1) % pattern == 0 ? "global" : "local")],
            RotaryBaseLocal = local.Base,
        }).Validated();
    }
}
