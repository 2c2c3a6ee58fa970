using SharpLens.Models;
using SharpLens.Models.Encoder;

namespace SharpLens.Loading;

/// <summary>
/// One Hugging Face architecture as a config reader and a weight-name map, no model code: how its config.json reads
/// as a <see cref="ModelConfig"/>, and how its stored tensors become the parameters under TransformerLens's names
/// (of a decoder, or of an encoder when <see cref="Encoder"/> is set).
/// </summary>
/// <param name="ModelType">config.json's model_type ("llama", "gpt_neox", ...)</param>
/// <param name="ReadConfig">config.json → ModelConfig; unsupported variants throw <see cref="CheckpointException"/></param>
/// <param name="WriteWeights">the checkpoint's tensors → TransformerLens names and layouts, written parameter by parameter</param>
public sealed record HuggingFaceFamily(
    string ModelType,
    Func<HuggingFaceConfigJson, ModelConfig> ReadConfig,
    Action<ModelConfig, HuggingFaceConfigJson, HuggingFaceTensorSource, ParameterWriter> WriteWeights)
{
    /// <summary>The stored tensors the family reads, under the names its weight map uses (a multimodal checkpoint's
    /// text model); null for all of them as stored.</summary>
    public Func<HuggingFaceConfigJson, HuggingFaceTensorSource, HuggingFaceTensorSource>? SelectTensors { get; init; }

    /// <summary>For an encoder family (BERT): the encoder, allocated and not initialised, that the weight map fills
    /// (the tensors say which heads it has); null for the decoder families, which fill a <see cref="HookedTransformer"/>.</summary>
    public Func<ModelConfig, HuggingFaceTensorSource, ModelOptions?, HookedEncoder>? Encoder { get; init; }
}
