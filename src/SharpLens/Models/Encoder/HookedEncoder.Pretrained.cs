using SharpLens.Loading;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>Loading, tokenizing text, and sentence embeddings.</summary>
public sealed partial class HookedEncoder
{
    /// <summary>The tokenizer that goes with the weights, when the loader knows it (built-in models).</summary>
    public BertWordPieceTokenizer? Tokenizer { get; set; }

    /// <summary>
    /// A built-in encoder by name ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"), or a Hugging Face
    /// BERT folder (config.json + model.safetensors, BertModel or BertForMaskedLM; vocab.txt there gives the tokenizer).
    /// </summary>
    public static HookedEncoder FromPretrained(string nameOrFolder, ModelOptions? options = null)
    {
        if (PretrainedEncoders.TryLoadBuiltIn(nameOrFolder, out var builtIn, options)) return builtIn!;
        if (!Directory.Exists(nameOrFolder))
            throw new ArgumentException($"'{nameOrFolder}' is neither a built-in encoder ({string.Join(", ", PretrainedEncoders.Names)}) nor a folder.", nameof(nameOrFolder));
        var model = HuggingFaceModels.LoadEncoder(nameOrFolder, options);
        string vocab = Path.Combine(nameOrFolder, "vocab.txt");
        if (File.Exists(vocab)) model.Tokenizer = BertWordPieceTokenizer.FromVocabFile(vocab);
        return model;
    }

    /// <summary>Tokenizes texts with the attached tokenizer: tokens, attention mask and token type ids, [batch, pos].</summary>
    public (Tensor Tokens, Tensor AttentionMask, Tensor TokenTypeIds) ToTokens(IReadOnlyList<string> texts)
    {
        var tokenizer = Tokenizer ?? throw new SharpLensArgumentException(nameof(Tokenizer), 
            $"{Config.ModelName} has no tokenizer attached; set HookedEncoder.Tokenizer (e.g. BertWordPieceTokenizer.FromVocabFile) or pass token ids.");
        return tokenizer.ToTokens(texts, Config.NCtx);
    }

    /// <summary>
    /// Sentence embeddings as sentence-transformers computes them for all-MiniLM-L6-v2: the mean of the last hidden
    /// state over each text's real tokens, scaled to unit length. [batch, d_model].
    /// </summary>
    public Tensor EmbedSentences(IReadOnlyList<string> texts)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var (tokens, mask, types) = ToTokens(texts);
        return SentenceEmbedding.MeanPoolNormalized(Encode(tokens, mask, types), mask).MoveToOuterDisposeScope();
    }
}
