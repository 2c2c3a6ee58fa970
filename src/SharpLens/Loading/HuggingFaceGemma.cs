using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Gemma (model_type "gemma"): Llama's layout with three differences, all absorbed at load time as TransformerLens
/// does, so the model code is Llama's: RMSNorm multiplies by (1 + w), loaded as w + 1; the embedding is multiplied by
/// sqrt(d_model), folded into W_E (the tied unembedding stays the unscaled embedding, so W_U is no longer W_Eᵀ);
/// the MLP is GeGLU (hidden_activation, tanh-approximated GELU). head_dim is independent of d_model / n_heads.
/// </summary>
public static class HuggingFaceGemma
{
    public static readonly HuggingFaceFamily Family = new("gemma", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, Layout(json), Tied(json), into));

    internal static HuggingFaceLlama.LlamaLayout Layout(HuggingFaceConfigJson json) =>
        new(QkvBias: json.Bool("attention_bias", false), OutputBias: json.Bool("attention_bias", false), NormPlusOne: true, EmbeddingScale: true);

    internal static bool Tied(HuggingFaceConfigJson json) => json.Bool("tie_word_embeddings", true);

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        json.Get<string>("hidden_act"); // Gemma configs carry it too, but transformers' Gemma reads hidden_activation
        return (HuggingFaceLlama.ReadLlamaLikeConfig(json, "gelu_pytorch_tanh", activationKey: "hidden_activation") with
        {
            ModelName = HuggingFaceLlama.ModelNameOf(json),
            TiedEmbeddings = false, // W_E carries the sqrt(d_model) scale; W_U does not
        }).Validated();
    }
}
