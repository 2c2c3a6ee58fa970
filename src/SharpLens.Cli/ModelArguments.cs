using System.CommandLine;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Loading;
using SharpLens.Organisms;

namespace SharpLens.Cli;

/// <summary>The --model and --no-processing options every model-reading command shares; <see cref="ModelLoader"/> finds the model.</summary>
sealed class ModelArguments
{
    /// <summary>The named models (built-in organisms), usable wherever a model is asked for.</summary>
    public static IReadOnlyDictionary<string, string> Organisms =>
        ModelLoader.Named.Values.OrderBy(m => m.Name, StringComparer.Ordinal).ToDictionary(m => m.Name, m => m.Description);

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

    public Option<string> DType { get; } = new("--dtype")
    {
        Description = "The model's dtype: float32 (default), bfloat16 (weights loaded straight to bf16, activations bf16; faster where the CPU has AVX512_BF16 or AMX) or float16.",
        DefaultValueFactory = _ => "float32",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(NoProcessing);
        command.Options.Add(OrganismCache);
        command.Options.Add(DType);
    }

    public HookedTransformer Load(ParseResult parse) => Load(parse.GetValue(Model)!, parse.GetValue(NoProcessing), parse.GetValue(OrganismCache), ParseDType(parse.GetValue(DType)));

    /// <summary>A decoder or an encoder: what <c>logits</c> and <c>cache</c> accept.</summary>
    public LoadedModel LoadAny(ParseResult parse)
    {
        var dtype = ParseDType(parse.GetValue(DType));
        var loaded = ModelLoader.Load(parse.GetValue(Model)!, Options(parse.GetValue(NoProcessing), parse.GetValue(OrganismCache), dtype));
        return loaded switch
        {
            HookedTransformer decoder => new LoadedModel(InDType(decoder, dtype), null),
            HookedEncoder encoder when encoder.Options.DType != dtype => new LoadedModel(null, encoder.MoveTo(encoder.Options.Device, dtype)),
            _ => new LoadedModel(loaded as HookedTransformer, loaded as HookedEncoder),
        };
    }

    /// <summary>--dtype's value as a scalar type (float32, bfloat16 / bf16, float16 / fp16 / half).</summary>
    public static TorchSharp.torch.ScalarType ParseDType(string? value) => value?.ToLowerInvariant() switch
    {
        null or "float32" or "fp32" or "float" => TorchSharp.torch.ScalarType.Float32,
        "bfloat16" or "bf16" => TorchSharp.torch.ScalarType.BFloat16,
        "float16" or "fp16" or "half" => TorchSharp.torch.ScalarType.Float16,
        _ => throw new ArgumentException($"--dtype {value}: expected float32, bfloat16 or float16.", "--dtype"),
    };

    /// <summary>A model some loader built in another dtype (a named organism trains in float32), converted once.</summary>
    static HookedTransformer InDType(HookedTransformer model, TorchSharp.torch.ScalarType dtype) =>
        model.Options.DType == dtype ? model : model.MoveTo(model.Options.Device, dtype);

    /// <summary>A folder whose config.json says model_type "bert": an encoder (<see cref="ModelLoader.IsEncoderFolder"/>).</summary>
    internal static bool IsBertFolder(string folder) => ModelLoader.IsEncoderFolder(folder);

    /// <summary>The library loader's options for these arguments; downloads draw progress bars.</summary>
    public static ModelLoadOptions Options(bool noProcessing, string? organismCache, TorchSharp.torch.ScalarType dtype = TorchSharp.torch.ScalarType.Float32) => new()
    {
        Model = dtype == TorchSharp.torch.ScalarType.Float32 ? null : new ModelOptions("cpu", dtype),
        Processing = noProcessing ? WeightProcessingOptions.None : null,
        CacheFolder = organismCache,
        ResolveFromHub = name => Commands.DownloadCommand.Resolve(name),
        // An organism that must be trained first says so, with a progress bar.
        // (brown-lm loads through its own entry, which honours --no-processing.)
        LoadNamed = (named, options) => Organism.IsName(named.Name) && !BrownLanguageModel.IsName(named.Name) ? OrganismDisplay.Load(named.Name, options.CacheFolder) : named.Load(options),
    };

    /// <summary>A decoder, through <see cref="ModelLoader.LoadDecoder"/>; the errors name --model.</summary>
    public static HookedTransformer Load(string model, bool noProcessing, string? organismCache = null, TorchSharp.torch.ScalarType dtype = TorchSharp.torch.ScalarType.Float32)
    {
        try { return InDType(ModelLoader.LoadDecoder(model, Options(noProcessing, organismCache, dtype)), dtype); }
        catch (NotADecoderException)
        {
            throw new ArgumentException($"--model {model} is an encoder (BERT): this command needs a decoder. Encoders work with logits, cache and sae.", "--model");
        }
        catch (UnknownModelException e) { throw new ArgumentException($"--model {e.Message}", "--model", e); }
    }
}

/// <summary>Preparation messages (downloading, tokenizing) on standard error, so they never mix with a command's output.</summary>
sealed class ConsoleLog : IProgress<string>
{
    public void Report(string value) => Console.Error.WriteLine(value);
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
