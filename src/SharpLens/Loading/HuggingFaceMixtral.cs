using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Mixtral (model_type "mixtral"): Mistral's attention, and a sparse mixture of experts in place of each MLP:
/// <code>
/// block_sparse_moe.gate.weight [num_local_experts, d_model]     → blocks.l.mlp.W_gate [d_model, num_experts] (the router)
/// block_sparse_moe.experts.e.w1 / w3 [d_mlp, d_model]           → blocks.l.mlp.experts.e.W_gate / W_in (transposed)
/// block_sparse_moe.experts.e.w2 [d_model, d_mlp]                → blocks.l.mlp.experts.e.W_out (transposed)
/// </code>
/// Each token goes to num_experts_per_tok experts, weighted by the renormalised softmax of the router (see
/// <see cref="Models.Components.MixtureOfExperts"/>). router_jitter_noise only perturbs training and is ignored.
/// </summary>
public static class HuggingFaceMixtral
{
    public static readonly HuggingFaceFamily Family = new("mixtral", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        var cfg = HuggingFaceMistral.ReadConfig(json) with
        {
            NumExperts = json.Int("num_local_experts", 8),
            ExpertsPerToken = json.Int("num_experts_per_tok", 2),
        };
        return cfg.Validated();
    }
}
