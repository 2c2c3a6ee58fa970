using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Phi-3 (model_type "phi3"): Llama's computation with fused projections, split at load time:
/// <code>
/// self_attn.qkv_proj.weight [(n_heads + 2·n_kv)·d_head, d_model] = q_proj | k_proj | v_proj stacked along the output
/// mlp.gate_up_proj.weight [2·d_mlp, d_model]                    = gate_proj | up_proj   (act(gate) ⊙ up, as Llama)
/// </code>
/// partial_rotary_factor rotates only the first int(head_dim · factor) dimensions; sliding_window, when set, applies to
/// every layer; rope_scaling is usually Phi-3's "longrope" against the top-level original_max_position_embeddings.
/// </summary>
public static class HuggingFacePhi3
{
    public static readonly HuggingFaceFamily Family = new("phi3", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama with { FusedProjections = true }, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        if (json.Bool("attention_bias", false)) throw json.Problem("attention_bias = true is not a Phi-3 layout SharpLens reads (its qkv_proj has no bias).");
        var cfg = HuggingFaceLlama.ReadLlamaLikeConfig(json, "silu", partialRotary: true) with { ModelName = HuggingFaceLlama.ModelNameOf(json) };
        json.Get<int?>("original_max_position_embeddings"); // the pretraining context, which only longrope reads
        int? window = json.Get<int?>("sliding_window");
        if (window is not null)
            cfg = cfg with { UseLocalAttn = true, WindowSize = window, AttnTypes = HuggingFaceLlama.AttnTypesFromLayerTypes(json, cfg.NLayers) };
        return cfg.Validated();
    }
}
