using SharpLens.Hooks;
using SharpLens.Loading.Hub;
using SharpLens.Loading.Llama2c;
using SharpLens.Models;
using SharpLens.Models.Encoder;

namespace SharpLens.Loading;

/// <summary>How <see cref="ModelLoader"/> loads: device and dtype, weight processing, caches.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>Device and dtype of the loaded model (default: CPU, float32).</summary>
    public ModelOptions? Model { get; init; }
    /// <summary>How decoder weights are processed; null is TransformerLens's default (fold LayerNorm, centre), <see cref="WeightProcessingOptions.None"/> keeps them as stored.</summary>
    public WeightProcessingOptions? Processing { get; init; }
    /// <summary>Where named models trained on first use (the organisms) are cached; null: $SHARPLENS_CACHE, else ~/.cache/sharplens.</summary>
    public string? CacheFolder { get; init; }
    /// <summary>The Hugging Face cache, revision and offline switch for names and repo ids (default: from the environment).</summary>
    public HubOptions? Hub { get; init; }
    /// <summary>Told about each file while a name or repo id downloads.</summary>
    public IProgress<DownloadProgress>? DownloadProgress { get; init; }
    /// <summary>
    /// Turns a model name or org/name repo id into a local folder; default <see cref="ModelResolver.ResolveFolder"/> with
    /// <see cref="Hub"/> and <see cref="DownloadProgress"/>. (The CLI passes one that draws progress bars.)
    /// </summary>
    public Func<string, string>? ResolveFromHub { get; init; }
    /// <summary>How a named model is built; default its own <see cref="NamedModel.Load"/>. (The CLI shows a progress bar while an organism trains.)</summary>
    public Func<NamedModel, ModelLoadOptions, HookedRootModule>? LoadNamed { get; init; }
}

/// <summary>A model the loader knows by name and builds itself (an organism trained on first use, then cached).</summary>
/// <param name="Load">Builds or loads the model; the caller owns (disposes) it.</param>
public sealed record NamedModel(string Name, string Description, Func<ModelLoadOptions, HookedRootModule> Load);

/// <summary>
/// The one place a model string becomes a hooked model — what every <c>--model</c> accepts: a Hugging Face folder of any
/// family (a decoder, or a BERT encoder), a file in one, a llama2.c <c>.bin</c>, all-MiniLM-L6-v2 (built in), a named
/// model (<see cref="Named"/>: the organisms), or a model name / <c>org/name</c> repo id found in or downloaded to the
/// Hugging Face cache.
/// </summary>
public static class ModelLoader
{
    static readonly Dictionary<string, NamedModel> _named = new(StringComparer.Ordinal);

    /// <summary>The models known by name (registered by the rooms that build them), by name.</summary>
    public static IReadOnlyDictionary<string, NamedModel> Named
    {
        get { lock (_named) return new Dictionary<string, NamedModel>(_named); }
    }

    /// <summary>Makes <paramref name="model"/> loadable by its name; a second registration of a name replaces the first.</summary>
    public static void Register(NamedModel model)
    {
        lock (_named) _named[model.Name] = model;
    }

    /// <summary>A decoder (<see cref="HookedTransformer"/>) or an encoder (<see cref="HookedEncoder"/>); the caller disposes it.</summary>
    public static HookedRootModule Load(string nameOrPath, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPath);
        options ??= new ModelLoadOptions();
        if (PretrainedEncoders.IsBuiltIn(nameOrPath)) return PretrainedEncoders.Load(nameOrPath, options.Model);
        if (File.Exists(nameOrPath))
            return IsLlama2cFile(nameOrPath)
                ? Llama2cConversion.Load(nameOrPath, options.Model, options.Processing)
                : LoadFolder(Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!, options); // model.safetensors, pytorch_model.bin, config.json: the folder it sits in
        if (Directory.Exists(nameOrPath)) return LoadFolder(nameOrPath, options);
        NamedModel? named;
        lock (_named) _named.TryGetValue(nameOrPath, out named);
        if (named is not null) return options.LoadNamed?.Invoke(named, options) ?? named.Load(options);
        if (ModelRegistry.TryGetRepoId(nameOrPath, out _) || ModelRegistry.LooksLikeRepoId(nameOrPath))
            return LoadFolder((options.ResolveFromHub ?? (n => ModelResolver.ResolveFolder(n, options.Hub, options.DownloadProgress)))(nameOrPath), options);
        var closest = ModelRegistry.Closest(nameOrPath, 3, Named.Keys);
        throw new UnknownModelException(nameOrPath,
            $"'{nameOrPath}' is neither a folder, a file, a known model name, an org/name repo id, nor a built-in model." +
            (closest.Count > 0 ? $" Did you mean {string.Join(", ", closest)}?" : "") +
            $" Give a Hugging Face folder, a llama2.c .bin, a name (see `sharplens download --list`), {PretrainedEncoders.Names[0]}, or one of: {string.Join(", ", Named.Keys.Order(StringComparer.Ordinal))}.");
    }

    /// <summary>As <see cref="Load"/>, for callers that need a decoder: an encoder is an error that says so.</summary>
    public static HookedTransformer LoadDecoder(string nameOrPath, ModelLoadOptions? options = null)
    {
        if (PretrainedEncoders.IsBuiltIn(nameOrPath) || (Directory.Exists(nameOrPath) && IsEncoderFolder(nameOrPath)))
            throw new NotADecoderException(nameOrPath);
        var model = Load(nameOrPath, options);
        if (model is HookedTransformer decoder) return decoder;
        model.Dispose();
        throw new NotADecoderException(nameOrPath);
    }

    /// <summary>A Hugging Face folder: BERT (config.json's model_type "bert") as an encoder, every other family as a decoder.</summary>
    public static HookedRootModule LoadFolder(string folder, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        return IsEncoderFolder(folder)
            ? HookedEncoder.FromPretrained(folder, options.Model)
            : HookedTransformer.FromPretrained(folder, options.Model, options.Processing);
    }

    /// <summary>A folder whose config.json names an encoder family's model_type (<see cref="HuggingFaceModels.EncoderModelTypes"/>: bert).</summary>
    public static bool IsEncoderFolder(string folder)
    {
        string config = Path.Combine(folder, "config.json");
        if (!File.Exists(config)) return false;
        try { return HuggingFaceModels.IsEncoderType(System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))?["model_type"]?.GetValue<string>()); }
        // Unreadable (a repeated key is an ArgumentException when the object is first indexed): not an encoder's;
        // the decoder's reader then refuses it naming config.json.
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException) { return false; }
    }

    /// <summary>
    /// A llama2.c checkpoint is a bare file of int32 header and floats; a PyTorch .bin is a zip ("PK"), and a
    /// Hugging Face folder's config.json or .safetensors stand for their folder.
    /// </summary>
    static bool IsLlama2cFile(string path)
    {
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return false;
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        return stream.Read(magic) == 2 && !(magic[0] == (byte)'P' && magic[1] == (byte)'K');
    }
}

/// <summary>A model string the loader cannot resolve; the message lists the closest names.</summary>
public sealed class UnknownModelException(string model, string message) : SharpLensException(message)
{
    public string Model { get; } = model;
}

/// <summary>A decoder was needed but the model string names an encoder.</summary>
public sealed class NotADecoderException(string model)
    : SharpLensException($"'{model}' is an encoder (BERT), but a decoder is needed here. Encoders work with the hook API and the techniques that take a HookedRootModule.")
{
    public string Model { get; } = model;
}
