using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Qwen 3 (model_type "qwen3"): Llama's layout plus a per-head RMSNorm on queries and keys before rotation
/// (self_attn.q_norm / k_norm [head_dim] → attn.q_norm.w, attn.k_norm.w); head_dim is its own field, independent of
/// hidden_size / num_attention_heads; attention_bias puts biases on all four projections. Sliding windows as Qwen2
/// (use_sliding_window: layers from max_window_layers on, or layer_types).
/// </summary>
public static class HuggingFaceQwen3
{
    public static readonly HuggingFaceFamily Family = new("qwen3", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama with
        {
            QkvBias = json.Bool("attention_bias", false), OutputBias = json.Bool("attention_bias", false), QkNorm = true,
        }, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        var cfg = HuggingFaceLlama.ReadLlamaLikeConfig(json, "silu") with { ModelName = HuggingFaceLlama.ModelNameOf(json), UseQkNorm = true, QkNormPerHead = true };
        return HuggingFaceQwen2.WithSlidingWindows(json, cfg).Validated();
    }
}
