using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// One Hugging Face architecture as a config reader and a weight-name map, no model code: how its config.json reads
/// as a <see cref="ModelConfig"/>, and how its stored tensors become a state dict under TransformerLens's names.
/// </summary>
/// <param name="ModelType">config.json's model_type ("llama", "gpt_neox", ...)</param>
/// <param name="ReadConfig">config.json → ModelConfig; unsupported variants throw <see cref="CheckpointException"/></param>
/// <param name="ToStateDict">the checkpoint's tensors → TransformerLens names and layouts, as float32</param>
public sealed record HuggingFaceFamily(
    string ModelType,
    Func<HuggingFaceConfigJson, ModelConfig> ReadConfig,
    Func<ModelConfig, HuggingFaceConfigJson, HuggingFaceTensorSource, Dictionary<string, Tensor>> ToStateDict);
