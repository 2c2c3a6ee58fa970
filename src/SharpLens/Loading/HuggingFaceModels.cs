using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// Loads a Hugging Face model folder (config.json + model.safetensors or a sharded index) of any supported
/// architecture, picked by config.json's model_type; each family is a config reader and a weight-name map
/// (HuggingFaceLlama, HuggingFaceGptNeoX, ...), and all of them build the one <see cref="HookedTransformer"/>.
/// Weights may be stored as F32, F16 or BF16; the model takes the dtype of its <see cref="ModelOptions"/>.
/// </summary>
public static class HuggingFaceModels
{
    static readonly HuggingFaceFamily[] Families =
    [
        HuggingFaceLlama.Family, HuggingFaceMistral.Family, HuggingFaceQwen2.Family,
        HuggingFaceGemma.Family, HuggingFaceGemma2.Family, HuggingFaceGptNeoX.Family,
        HuggingFaceQwen3.Family, HuggingFaceGemma3.Family, HuggingFacePhi3.Family, HuggingFaceOlmo2.Family, HuggingFaceMixtral.Family,
        HuggingFaceGemma3Multimodal.Family,
    ];

    /// <summary>Every model_type this loader reads.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = ["gpt2", .. Families.Select(f => f.ModelType)];

    /// <summary>The family of a config.json; an unknown or missing model_type lists the supported ones.</summary>
    public static HuggingFaceFamily FamilyOf(HuggingFaceConfigJson json)
    {
        string? type = json.ModelType;
        return Families.FirstOrDefault(f => f.ModelType == type) ?? throw json.Problem(
            $"model_type is {(type is null ? "missing" : $"\"{type}\"")}; supported model types are {string.Join(", ", SupportedModelTypes)}.");
    }

    /// <summary>The family's reading of the config, after checking no field that changes the maths went unread.</summary>
    static ModelConfig ReadChecked(HuggingFaceFamily family, HuggingFaceConfigJson json)
    {
        var config = family.ReadConfig(json);
        HuggingFaceConfigFields.CheckNothingIgnored(json, family.ModelType);
        return config;
    }

    /// <summary>A config.json's text read as a <see cref="ModelConfig"/>; <paramref name="source"/> names it in errors.</summary>
    public static ModelConfig ReadConfig(string configJson, string source = "config.json")
    {
        var json = new HuggingFaceConfigJson(configJson, source);
        return json.Checked(() => ReadChecked(FamilyOf(json), json));
    }

    /// <summary>
    /// A model from a config.json's text and the checkpoint's tensors under their Hugging Face names, weights
    /// unprocessed. GPT-2 is read from folders only (<see cref="Load(string, ModelOptions?)"/>).
    /// </summary>
    public static HookedTransformer Load(string configJson, HuggingFaceTensorSource tensors, ModelOptions? options = null, string source = "config.json") =>
        Load(new HuggingFaceConfigJson(configJson, source), tensors, options);

    /// <summary>The model in a Hugging Face folder, weights unprocessed (see <see cref="HookedTransformer.FromPretrained"/> for processed).</summary>
    public static HookedTransformer Load(string folder, ModelOptions? options = null)
    {
        folder = Path.GetFullPath(folder);
        var json = HuggingFaceConfigJson.ReadFile(Path.Combine(folder, HuggingFaceGpt2.ConfigFile));
        if (json.ModelType is "gpt2") return HuggingFaceGpt2.Load(folder, options);
        FamilyOf(json); // an unknown model_type fails before the weights are opened
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        return Load(json, HuggingFaceTensorSource.From(checkpoint), options);
    }

    static HookedTransformer Load(HuggingFaceConfigJson json, HuggingFaceTensorSource tensors, ModelOptions? options)
    {
        var family = FamilyOf(json);
        var config = json.Checked(() => ReadChecked(family, json));
        tensors = family.SelectTensors?.Invoke(json, tensors) ?? tensors;
        // Before anything is allocated: the config must describe a model these weights can fill, in memory this machine has.
        ModelSizeCheck.AgainstWeights(config, tensors.StoredElements, json.Source, tensors.Source, json);
        // Each converted tensor goes straight into its parameter and is freed: loading holds the model, not a second state dict.
        var model = HookedTransformer.Uninitialized(config, options);
        try
        {
            var into = new ParameterWriter(model);
            family.WriteWeights(config, json, tensors, into);
            into.Finish();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
