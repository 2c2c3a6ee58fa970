using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Mistral (model_type "mistral"): Llama's layout and config, plus sliding-window attention in every layer when
/// config.json sets sliding_window (a query sees itself and the sliding_window − 1 positions before it).
/// </summary>
public static class HuggingFaceMistral
{
    public static readonly HuggingFaceFamily Family = new("mistral", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceLlama.WriteWeights(cfg, tensors, HuggingFaceLlama.LlamaLayout.Llama, cfg.TiedEmbeddings, into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        var cfg = HuggingFaceLlama.ReadLlamaLikeConfig(json, "silu") with { ModelName = HuggingFaceLlama.ModelNameOf(json) };
        int? window = json.Get<int?>("sliding_window");
        if (window is null) return cfg.Validated();
        return (cfg with
        {
            UseLocalAttn = true,
            WindowSize = window,
            AttnTypes = HuggingFaceLlama.AttnTypesFromLayerTypes(json, cfg.NLayers),
        }).Validated();
    }
}
