using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Qwen2 (model_type "qwen2"): Llama's layout with biases on the q, k and v projections (not on o_proj). With
/// use_sliding_window, layers from max_window_layers on use a sliding window of sliding_window positions.
/// </summary>
public static class HuggingFaceQwen2
{
    public static readonly HuggingFaceFamily Family = new("qwen2", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama with { QkvBias = true }, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        var cfg = HuggingFaceLlama.ReadLlamaLikeConfig(json, "silu") with { ModelName = HuggingFaceLlama.ModelNameOf(json) };
        return WithSlidingWindows(json, cfg).Validated();
    }

    /// <summary>Qwen's sliding windows: with use_sliding_window, layer_types, or else the layers from max_window_layers on.</summary>
    internal static ModelConfig WithSlidingWindows(HuggingFaceConfigJson json, ModelConfig cfg)
    {
        json.Get<int?>("sliding_window");
        json.Get<int?>("max_window_layers");
        if (!json.Bool("use_sliding_window", false)) return cfg;
        int window = json.Int("sliding_window"), firstLocal = json.Int("max_window_layers", cfg.NLayers);
        return cfg with
        {
            UseLocalAttn = true,
            WindowSize = window,
            AttnTypes = HuggingFaceLlama.AttnTypesFromLayerTypes(json, cfg.NLayers)
                ?? [.. Enumerable.Range(0, cfg.NLayers).Select(l => l >= firstLocal ? "local" : "global")],
        };
    }
}
