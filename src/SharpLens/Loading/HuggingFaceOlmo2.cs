using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// OLMo 2 (model_type "olmo2"): Llama's layout with the norms moved after the sublayers, and queries and keys
/// normalised over the whole projection (all heads at once) before rotation:
/// <code>
/// resid_mid  = resid_pre + post_attention_layernorm(attn(resid_pre))       → ln1_post   (no input norm: ln1 is the identity)
/// resid_post = resid_mid + post_feedforward_layernorm(mlp(resid_mid))      → ln2_post   (ln2 is the identity)
/// q = q_norm(x W_Q) over n_heads·d_head, k = k_norm(x W_K) over n_kv_heads·d_head     → attn.q_norm.w, attn.k_norm.w
/// </code>
/// The final norm (model.norm) stays a plain RMSNorm before the unembedding.
/// </summary>
public static class HuggingFaceOlmo2
{
    public static readonly HuggingFaceFamily Family = new("olmo2", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama with
        {
            QkvBias = json.Bool("attention_bias", false), OutputBias = json.Bool("attention_bias", false), QkNorm = true, PostNormsOnly = true,
        }, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json) =>
        (HuggingFaceLlama.ReadLlamaLikeConfig(json, "silu") with
        {
            ModelName = HuggingFaceLlama.ModelNameOf(json),
            NormalizationType = Normalization.None,
            FinalNormalizationType = Normalization.RMS,
            PostNormalizationType = Normalization.RMS,
            UseQkNorm = true,
            QkNormPerHead = false,
        }).Validated();
}
