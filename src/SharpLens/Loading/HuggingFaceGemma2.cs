using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Gemma 2 (model_type "gemma2"): Gemma, plus
/// <list type="bullet">
/// <item>sandwich norms: input_layernorm → ln1, post_attention_layernorm (on the attention output) → ln1_post,
/// pre_feedforward_layernorm → ln2, post_feedforward_layernorm → ln2_post;</item>
/// <item>attention scores soft-capped at attn_logit_softcapping and logits at final_logit_softcapping;</item>
/// <item>scores scaled by 1/sqrt(query_pre_attn_scalar) instead of 1/sqrt(head_dim);</item>
/// <item>alternating attention: even layers (0, 2, ...) slide a window of sliding_window positions, odd ones are global.</item>
/// </list>
/// </summary>
public static class HuggingFaceGemma2
{
    public static readonly HuggingFaceFamily Family = new("gemma2", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceGemma.Layout(json) with { SandwichNorms = true }, HuggingFaceGemma.Tied(json), into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        var cfg = HuggingFaceGemma.ReadConfig(json);
        int? window = json.Get<int?>("sliding_window");
        double? attnCap = json.Get<double?>("attn_logit_softcapping"), finalCap = json.Get<double?>("final_logit_softcapping");
        return (cfg with
        {
            UseNormalizationBeforeAndAfter = true,
            AttnScoresSoftCap = attnCap,
            OutputLogitsSoftCap = finalCap,
            AttnScale = Math.Sqrt(json.Double("query_pre_attn_scalar", cfg.DHead)),
            UseLocalAttn = window is not null,
            WindowSize = window,
            AttnTypes = window is null ? null : HuggingFaceLlama.AttnTypesFromLayerTypes(json, cfg.NLayers)
                ?? [.. Enumerable.Range(0, cfg.NLayers).Select(l => l % 2 == 0 ? "local" : "global")],
        }).Validated();
    }
}
