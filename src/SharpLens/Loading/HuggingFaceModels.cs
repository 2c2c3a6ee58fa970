using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// Loads a Hugging Face model folder (config.json + model.safetensors or a sharded index) of any supported
/// architecture, picked by config.json's model_type; each family is a config reader and a weight-name map
/// (HuggingFaceGpt2, HuggingFaceLlama, HuggingFaceBert, ...). The decoder families build the one
/// <see cref="HookedTransformer"/>, BERT the <see cref="HookedEncoder"/>; all of them load the same way.
/// Weights may be stored as F32, F16 or BF16; the model takes the dtype of its <see cref="ModelOptions"/>, and its
/// parameters are allocated in that dtype (a bf16 load never holds a float32 copy of the model).
/// </summary>
public static class HuggingFaceModels
{
    static readonly HuggingFaceFamily[] Families =
    [
        HuggingFaceGpt2.Family, HuggingFaceLlama.Family, HuggingFaceMistral.Family, HuggingFaceQwen2.Family,
        HuggingFaceGemma.Family, HuggingFaceGemma2.Family, HuggingFaceGptNeoX.Family,
        HuggingFaceQwen3.Family, HuggingFaceGemma3.Family, HuggingFacePhi3.Family, HuggingFaceOlmo2.Family, HuggingFaceMixtral.Family,
        HuggingFaceGemma3Multimodal.Family, HuggingFaceBert.Family,
    ];

    /// <summary>Every model_type <see cref="HookedTransformer"/> loads (the decoder families).</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } = [.. Families.Where(f => f.Encoder is null).Select(f => f.ModelType)];

    /// <summary>Every model_type <see cref="HookedEncoder"/> loads (bert).</summary>
    public static IReadOnlyList<string> EncoderModelTypes { get; } = [.. Families.Where(f => f.Encoder is not null).Select(f => f.ModelType)];

    /// <summary>The family of a config.json; an unknown or missing model_type lists the supported ones.</summary>
    public static HuggingFaceFamily FamilyOf(HuggingFaceConfigJson json)
    {
        string? type = json.ModelType;
        return Families.FirstOrDefault(f => f.ModelType == type) ?? throw json.Problem(
            $"model_type is {(type is null ? "missing" : $"\"{type}\"")}; supported model types are {string.Join(", ", SupportedModelTypes)} (decoders) and {string.Join(", ", EncoderModelTypes)} (encoders).");
    }

    /// <summary>Whether config.json's model_type is an encoder family's (bert).</summary>
    public static bool IsEncoderType(string? modelType) => EncoderModelTypes.Contains(modelType);

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

    /// <summary>A decoder from a config.json's text and the checkpoint's tensors under their Hugging Face names, weights unprocessed.</summary>
    public static HookedTransformer Load(string configJson, HuggingFaceTensorSource tensors, ModelOptions? options = null, string source = "config.json") =>
        (HookedTransformer)Load(Decoder(new HuggingFaceConfigJson(configJson, source)), tensors, options);

    /// <summary>The decoder in a Hugging Face folder, weights unprocessed (see <see cref="HookedTransformer.FromPretrained"/> for processed).</summary>
    public static HookedTransformer Load(string folder, ModelOptions? options = null) => (HookedTransformer)LoadFolder(folder, options, Decoder);

    /// <summary>The encoder in a Hugging Face BERT folder (BertModel or BertForMaskedLM); the masked-LM head is built when the checkpoint has one.</summary>
    public static HookedEncoder LoadEncoder(string folder, ModelOptions? options = null) => (HookedEncoder)LoadFolder(folder, options, Encoder);

    static HookedRootModule LoadFolder(string folder, ModelOptions? options, Func<HuggingFaceConfigJson, HuggingFaceConfigJson> kind)
    {
        folder = Path.GetFullPath(folder);
        var json = kind(HuggingFaceConfigJson.ReadFile(Path.Combine(folder, HuggingFaceGpt2.ConfigFile))); // an unknown model_type fails before the weights are opened
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        return Load(json, HuggingFaceTensorSource.From(checkpoint), options);
    }

    /// <summary>The config of a decoder family; an encoder's says which call loads it.</summary>
    static HuggingFaceConfigJson Decoder(HuggingFaceConfigJson json) => FamilyOf(json).Encoder is null ? json : throw json.Problem(
        $"model_type is \"{json.ModelType}\", an encoder: load it with HookedEncoder.FromPretrained or ModelLoader.Load. HookedTransformer loads the decoder model types {string.Join(", ", SupportedModelTypes)}.");

    static HuggingFaceConfigJson Encoder(HuggingFaceConfigJson json) => FamilyOf(json).Encoder is not null ? json : throw json.Problem(
        $"model_type is \"{json.ModelType}\", a decoder: load it with HookedTransformer.FromPretrained or ModelLoader.Load. HookedEncoder loads the model types {string.Join(", ", EncoderModelTypes)}.");

    static HookedRootModule Load(HuggingFaceConfigJson json, HuggingFaceTensorSource tensors, ModelOptions? options)
    {
        var family = FamilyOf(json);
        var config = json.Checked(() => ReadChecked(family, json));
        tensors = family.SelectTensors?.Invoke(json, tensors) ?? tensors;
        // Before anything is allocated: the config must describe a model these weights can fill, in memory this machine has.
        ModelSizeCheck.AgainstWeights(config, tensors.StoredElements, json.Source, tensors.Source, json);
        // Each converted tensor goes straight into its parameter and is freed: loading holds the model, not a second state dict.
        try
        {
            HookedRootModule model = family.Encoder is { } encoder ? encoder(config, tensors, options) : HookedTransformer.Uninitialized(config, options);
            return ParameterWriter.Fill(model, into => family.WriteWeights(config, json, tensors, into));
        }
        catch (CheckpointException e) when (e.ContradictsConfig && json.DimensionFields() is { Length: > 0 } fields)
        {
            // Which of config.json's fields gave that shape (a null one read as its default among them) is the user's next question.
            throw new CheckpointException(e.FilePath, e.TensorName, $"{e.Problem} {json.Source} sets {fields}.");
        }
    }
}
