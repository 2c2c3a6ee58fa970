using TorchSharp;
using SharpLens.Loading;
using static TorchSharp.torch;

namespace SharpLens.Models;

public partial class HookedTransformer
{
    /// <summary>
    /// Builds a model from weights under TransformerLens's names (<c>embed.W_E</c>, <c>blocks.0.attn.W_Q</c>, ...).
    /// Every parameter must be present with its exact shape, and nothing else may be; the weights are copied
    /// into the model's dtype and device.
    /// </summary>
    public static HookedTransformer FromStateDict(ModelConfig config, IReadOnlyDictionary<string, Tensor> stateDict, ModelOptions? options = null)
    {
        var model = Uninitialized(config, options);
        try
        {
            model.LoadStateDict(stateDict);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a Hugging Face folder (config.json + model.safetensors, or a sharded index) of any architecture
    /// <see cref="HuggingFaceModels.SupportedModelTypes"/> lists (gpt2, llama, mistral, qwen2, gemma, gemma2, gpt_neox, ...). As in TransformerLens,
    /// the weights are processed by default (LayerNorm folded, writing weights and unembedding centred, value biases
    /// folded), which leaves every log-probability unchanged; pass <see cref="WeightProcessingOptions.None"/> for the
    /// weights exactly as stored. <paramref name="folder"/> may also be a model name (<c>gpt2</c>) or repo id
    /// (<c>org/name</c>): it is then found in, or downloaded into, the Hugging Face cache (see <see cref="Loading.Hub.ModelResolver"/>).
    /// </summary>
    public static HookedTransformer FromPretrained(string folder, ModelOptions? options = null, WeightProcessingOptions? processing = null)
    {
        folder = Loading.Hub.ModelResolver.ResolveFolder(folder);
        var raw = HuggingFaceModels.Load(folder, options);
        // The folder's own tokenizer files win over the built-in GPT-2 tokenizer the config implies.
        if (File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt")))
            raw.Tokenizer = Tokenization.ModelTokenizer.FromFolder(folder);
        else if (File.Exists(Path.Combine(folder, "tokenizer.json")))
        {
            // tokenizer.json only (Pythia, Qwen2, Llama 3): read it if it is a byte-level BPE; otherwise leave the model
            // without one, and text input says what is missing.
            try { raw.Tokenizer = Tokenization.ModelTokenizer.FromTokenizerJson(Path.Combine(folder, "tokenizer.json")); }
            catch (Tokenization.TokenizerFilesException own)
            {
                // Not byte-level (SentencePiece-converted BPE with byte fallback, Metaspace, ...): Hugging Face's own tokenizers read it.
                try { raw.Tokenizer = CheckedVocabulary(raw, Tokenization.HuggingFaceTokenizerFiles.FromTokenizerJson(Path.Combine(folder, "tokenizer.json"))); }
                catch (Tokenization.TokenizerFilesException native)
                {
                    // Both readers refused: say why each did (the first reason is usually the one that names the field).
                    raw.Dispose();
                    throw new Tokenization.TokenizerFilesException(own.Path, $"{own.Message} Hugging Face's tokenizers could not read it either: {native.Message}");
                }
            }
        }
        else if (File.Exists(Path.Combine(folder, Tokenization.HuggingFaceTokenizerFiles.SentencePieceModel)))
            raw.Tokenizer = CheckedVocabulary(raw, Tokenization.HuggingFaceTokenizerFiles.FromSentencePiece(Path.Combine(folder, Tokenization.HuggingFaceTokenizerFiles.SentencePieceModel)));
        if (raw.TokenizerIfSet is { } attached) Tokenization.HuggingFaceTokenizerFiles.WithChatTemplate(attached, folder);
        processing ??= WeightProcessingOptions.Default;
        if (processing == WeightProcessingOptions.None) return raw;
        using (raw)
        {
            var processed = raw.ProcessWeights(processing);
            processed.TokenizerRefusal = raw.TokenizerRefusal;
            return processed;
        }
    }

    /// <summary>A tokenizer whose ids all fit the model's embedding; otherwise an error naming the tokenizer file and config.json's vocab_size.</summary>
    static Tokenization.ModelTokenizer CheckedVocabulary(HookedTransformer model, Tokenization.ModelTokenizer tokenizer)
    {
        if (tokenizer.VocabSize > model.Config.DVocab)
            throw new Tokenization.TokenizerFilesException(tokenizer.Name,
                $"{tokenizer.Name} has {tokenizer.VocabSize} token ids but config.json's vocab_size (the embedding's rows) is {model.Config.DVocab}: " +
                "its ids would not fit the embedding. The tokenizer and the weights come from different models; copy the tokenizer files of this checkpoint.");
        return tokenizer;
    }

    /// <summary>
    /// A model from a Hugging Face config.json's text and its tensors under Hugging Face names (from safetensors, a
    /// PyTorch pickle, or memory), processed as <see cref="FromPretrained"/> does unless <paramref name="processing"/> says otherwise.
    /// </summary>
    public static HookedTransformer FromHuggingFace(string configJson, HuggingFaceTensorSource tensors, ModelOptions? options = null, WeightProcessingOptions? processing = null)
    {
        var raw = HuggingFaceModels.Load(configJson, tensors, options);
        processing ??= WeightProcessingOptions.Default;
        if (processing == WeightProcessingOptions.None) return raw;
        using (raw) return raw.ProcessWeights(processing);
    }

    /// <summary>
    /// Saves the model in SharpLens's own format: <c>config.json</c> (<see cref="ModelConfig.ToJson"/>, TransformerLens
    /// field names) and <c>model.safetensors</c> (TransformerLens parameter names), written atomically. Any config can be
    /// saved this way; <see cref="Load"/> reads it back.
    /// </summary>
    public void Save(string folder, IReadOnlyDictionary<string, string>? metadata = null)
    {
        IO.AtomicFile.WriteFolder(folder, temporary => WriteTo(temporary, metadata));
    }

    /// <summary>Writes config.json and model.safetensors into an existing folder (for callers that write more beside them).</summary>
    internal void WriteTo(string folder, IReadOnlyDictionary<string, string>? metadata = null)
    {
        File.WriteAllText(Path.Combine(folder, ConfigFile), Config.ToJson());
        SafeTensorsWriter.Write(Path.Combine(folder, WeightsFile),
            named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)), metadata);
    }

    /// <summary>A model saved by <see cref="Save"/>: config.json and model.safetensors with TransformerLens names.</summary>
    public static HookedTransformer Load(string folder, ModelOptions? options = null)
    {
        string configPath = Path.Combine(folder, ConfigFile), weightsPath = Path.Combine(folder, WeightsFile);
        if (!File.Exists(configPath) || !File.Exists(weightsPath))
            throw new FileNotFoundException($"{folder} is not a SharpLens model folder: it needs {ConfigFile} and {WeightsFile}.", File.Exists(configPath) ? weightsPath : configPath);
        ModelConfig config;
        try { config = ModelConfig.FromJson(File.ReadAllText(configPath)); }
        catch (Exception e) when (e is System.Text.Json.JsonException or ArgumentException or InvalidOperationException or FormatException or OverflowException)
        {
            throw new CheckpointException(configPath, null, $"is not a SharpLens model config ({e.Message}); it is damaged, or not the config.json a SharpLens checkpoint holds.");
        }
        var weights = ReadWeights(weightsPath); // bounded by the file's size
        try
        {
            // Before the model is allocated: the config must describe a model these weights can fill, in memory this machine has.
            ModelSizeCheck.AgainstWeights(config, weights.Values.Sum(w => w.NumberOfElements), configPath, weightsPath);
            return FromStateDict(config, weights, options);
        }
        catch (StateDictException e) { throw new CheckpointException(weightsPath, e.TensorName, e.Message); }
        finally { foreach (var w in weights.Values) w.Dispose(); }
    }

    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors";

    // Not in a dispose scope: a model built from these must own its parameters beyond this call.
    internal static Dictionary<string, Tensor> ReadWeights(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.Names.ToDictionary(n => n, file.Read, StringComparer.Ordinal);
    }

    /// <summary>Writes config.json and model.safetensors in the Hugging Face GPT-2 layout (see <see cref="HuggingFaceGpt2.Save"/>).</summary>
    public void SaveHuggingFace(string folder) => HuggingFaceGpt2.Save(this, folder);

    /// <summary>Copies weights named as in <c>named_parameters()</c> into this model, after checking all names and shapes.</summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict)
    {
        var parameters = named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var missing = parameters.Keys.Where(n => !stateDict.ContainsKey(n)).ToList();
        if (missing.Count > 0)
            throw new StateDictException(missing[0], $"The state dict lacks {missing.Count} of {Config.ModelName}'s {parameters.Count} parameters: " +
                $"{string.Join(", ", missing.Take(5).Select(n => $"'{n}'"))}{(missing.Count > 5 ? ", ..." : "")}. Names follow TransformerLens (embed.W_E, blocks.0.attn.W_Q, ...).");
        var unexpected = stateDict.Keys.Where(n => !parameters.ContainsKey(n)).ToList();
        if (unexpected.Count > 0)
            throw new StateDictException(unexpected[0], $"The state dict has {unexpected.Count} tensors that {Config.ModelName} has no parameter for: " +
                $"{string.Join(", ", unexpected.Take(5).Select(n => $"'{n}'"))}{(unexpected.Count > 5 ? ", ..." : "")}. Does the config match the weights (attn_only, normalization_type, positional embedding)?");
        foreach (var (name, parameter) in parameters)
        {
            var value = stateDict[name];
            if (!value.shape.SequenceEqual(parameter.shape))
                throw new StateDictException(name, $"State dict tensor '{name}' has shape {ShapeText.Of(value.shape)} but the model expects {ShapeText.Of(parameter.shape)}; check d_model, n_heads, d_head, d_mlp, d_vocab and n_ctx in the config.");
        }
        using var _ = torch.no_grad();
        foreach (var (name, parameter) in parameters) parameter.copy_(stateDict[name]);
    }
}

/// <summary>A state dict that does not fit the model: a missing, unexpected or misshapen tensor, named.</summary>
public sealed class StateDictException(string tensorName, string message) : SharpLensArgumentException("stateDict", message)
{
    public string TensorName { get; } = tensorName;
}
