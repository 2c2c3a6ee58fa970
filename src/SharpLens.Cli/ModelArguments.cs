using System.CommandLine;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Organisms;

namespace SharpLens.Cli;

/// <summary>The --model and --no-processing options every model-reading command shares, and how a model is found.</summary>
sealed class ModelArguments
{
    /// <summary>Built-in model organisms, usable wherever a model is asked for.</summary>
    public static IReadOnlyDictionary<string, string> Organisms => Organism.Names;

    public Option<string> Model { get; } = new("--model")
    {
        Description = "A Hugging Face folder (config.json + model.safetensors or pytorch_model.bin; gpt2, llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3_text, phi3, olmo2, mixtral, gpt_neox, and bert where encoders are accepted), a llama2.c .bin file, all-MiniLM-L6-v2 (built in, an encoder), a model name or org/name repo id (found in or downloaded to the Hugging Face cache), or a built-in organism: " +
                      string.Join(", ", Organisms.Keys) + ".",
        Required = true,
    };

    public Option<bool> NoProcessing { get; } = new("--no-processing")
    {
        Description = "Use the weights exactly as stored (default: fold LayerNorm, centre writing weights and the unembedding, fold value biases, as TransformerLens does; log-probs are unchanged).",
    };

    public Option<string?> OrganismCache { get; } = new("--organism-cache")
    {
        Description = "Folder where built-in organisms are cached (default: $SHARPLENS_CACHE, else ~/.cache/sharplens).",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(NoProcessing);
        command.Options.Add(OrganismCache);
    }

    public HookedTransformer Load(ParseResult parse) => Load(parse.GetValue(Model)!, parse.GetValue(NoProcessing), parse.GetValue(OrganismCache));

    /// <summary>A decoder or an encoder: what <c>logits</c> and <c>cache</c> accept.</summary>
    public LoadedModel LoadAny(ParseResult parse)
    {
        string model = parse.GetValue(Model)!;
        if (PretrainedEncoders.IsBuiltIn(model)) return new LoadedModel(null, PretrainedEncoders.Load(model));
        if (Directory.Exists(model) && IsBertFolder(model)) return new LoadedModel(null, HookedEncoder.FromPretrained(model));
        return new LoadedModel(Load(parse), null);
    }

    /// <summary>A folder whose config.json says model_type "bert": an encoder.</summary>
    internal static bool IsBertFolder(string folder)
    {
        string config = Path.Combine(folder, "config.json");
        if (!File.Exists(config)) return false;
        try { return System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(config))?["model_type"]?.GetValue<string>() == "bert"; }
        catch (System.Text.Json.JsonException) { return false; }
    }

    /// <summary>
    /// A llama2.c checkpoint is a bare file of int32 header and floats; a PyTorch .bin is a zip ("PK"). A file with a
    /// Hugging Face name (model.safetensors, *.json, a shard) is never llama2.c, whatever its first bytes.
    /// </summary>
    static bool IsLlama2cFile(string path)
    {
        string name = Path.GetFileName(path);
        if (name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || name.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            || name.StartsWith("pytorch_model", StringComparison.Ordinal)) return false;
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[2];
        return stream.Read(magic) == 2 && !(magic[0] == (byte)'P' && magic[1] == (byte)'K');
    }

    public static HookedTransformer Load(string model, bool noProcessing, string? organismCache = null)
    {
        if (PretrainedEncoders.IsBuiltIn(model))
            throw new ArgumentException($"--model {model} is an encoder (BERT): this command needs a decoder. Encoders work with logits, cache and sae.", "--model");
        if (File.Exists(model))
            return IsLlama2cFile(model)
                ? Loading.Llama2c.Llama2cConversion.Load(model, processing: noProcessing ? WeightProcessingOptions.None : null)
                // model.safetensors, pytorch_model.bin, config.json: the folder it sits in
                : HookedTransformer.FromPretrained(Path.GetDirectoryName(Path.GetFullPath(model))!, processing: noProcessing ? WeightProcessingOptions.None : null);
        if (Directory.Exists(model))
            return HookedTransformer.FromPretrained(model, processing: noProcessing ? WeightProcessingOptions.None : null);
        if (Organism.IsName(model))
            return OrganismDisplay.Load(model, organismCache); // the organism's model is the whole of it; disposing the model frees it
        if (Loading.Hub.ModelRegistry.TryGetRepoId(model, out _) || Loading.Hub.ModelRegistry.LooksLikeRepoId(model)) // gpt2, org/name: cache or download
            return HookedTransformer.FromPretrained(Commands.DownloadCommand.Resolve(model), processing: noProcessing ? WeightProcessingOptions.None : null);
        var closest = Loading.Hub.ModelRegistry.Closest(model, 3, Organisms.Keys);
        string suggestion = closest.Count > 0 ? $" Did you mean {string.Join(", ", closest)}?" : "";
        throw new ArgumentException(
            $"--model '{model}' is neither a folder, a file, a known model name, an org/name repo id, nor a built-in organism.{suggestion} " +
            $"Give a Hugging Face folder, a llama2.c .bin, a name (see `sharplens download --list`), all-MiniLM-L6-v2, or one of: {string.Join(", ", Organisms.Keys)}.", "--model");
    }
}

/// <summary>Exactly one of a decoder or an encoder, as a command loaded it; disposing frees it.</summary>
sealed record LoadedModel(HookedTransformer? Decoder, HookedEncoder? Encoder) : IDisposable
{
    public void Dispose()
    {
        Decoder?.Dispose();
        Encoder?.Dispose();
    }
}
