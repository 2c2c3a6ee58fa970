using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>Text in and out: TransformerLens's to_tokens, to_str_tokens, to_string and running on a string.</summary>
public partial class HookedTransformer
{
    ModelTokenizer? _tokenizer;

    /// <summary>Why a tokenizer file beside the weights was not used (e.g. a tokenizer.json this reader refuses); said when text is given.</summary>
    internal string? TokenizerRefusal { get; set; }

    /// <summary>
    /// The tokenizer for text methods. Unless set, it is the built-in one that <see cref="ModelConfig.TokenizerName"/>
    /// names ("gpt2"); a model with neither throws when text is given.
    /// </summary>
    public ModelTokenizer Tokenizer
    {
        get => _shared is not null ? _shared.Tokenizer : _tokenizer ??= Config.TokenizerName is { } name
            ? ModelTokenizer.ForName(name)
            : throw new MissingTokenizerException(
                $"{Config.ModelName} has no tokenizer: set model.Tokenizer = ModelTokenizer.Gpt2() (or ModelTokenizer.FromFolder(path)), or name one in ModelConfig.TokenizerName." +
                (TokenizerRefusal is { } why ? $" The tokenizer file beside the weights was not used: {why}" : ""));
        set
        {
            if (_shared is not null) { _shared.Tokenizer = value; return; }
            if (value.VocabSize > Config.DVocab)
                throw new ArgumentException($"Tokenizer {value.Name} has {value.VocabSize} ids but {Config.ModelName} has d_vocab = {Config.DVocab}: its ids would not fit the embedding.", nameof(value));
            _tokenizer = value;
        }
    }

    /// <summary>The tokenizer if one was set or already created, without creating one.</summary>
    internal ModelTokenizer? TokenizerIfSet => _shared is not null ? _shared.TokenizerIfSet : _tokenizer;

    /// <summary>Token ids [1, pos] int64 of one text, BOS first unless <paramref name="prependBos"/> is false.</summary>
    public Tensor ToTokens(string text, bool prependBos = true) => tensor(EncodeIds(text, prependBos).Select(i => (long)i).ToArray()).unsqueeze(0); // [1, pos]

    /// <summary>
    /// Tokens [batch, max_pos] and AttentionMask [batch, max_pos] (1 real, 0 padding) for several texts;
    /// pass both to <see cref="Run(Tensor, Tensor?)"/>. Each prompt then gives the logits it gives alone.
    /// </summary>
    public (Tensor Tokens, Tensor AttentionMask) ToTokens(IReadOnlyList<string> texts, bool prependBos = true,
        PaddingSide side = PaddingSide.Right) =>
        TokenBatch.Pad([.. texts.Select(t => EncodeIds(t, prependBos))], Tokenizer.PadTokenId, side);

    /// <summary>One string per token of the text (BOS included when prepended), as TransformerLens's to_str_tokens.</summary>
    public IReadOnlyList<string> ToStrTokens(string text, bool prependBos = true) => Tokenizer.ToStrTokens(EncodeIds(text, prependBos));

    /// <summary>One string per token of token ids [pos] or [1, pos].</summary>
    public IReadOnlyList<string> ToStrTokens(Tensor tokens) => Tokenizer.ToStrTokens(SingleSequence(tokens, nameof(tokens)));

    /// <summary>The text of token ids [pos] or [1, pos] (TransformerLens's to_string); special tokens are kept.</summary>
    public string ToText(Tensor tokens) => Tokenizer.Decode(SingleSequence(tokens, nameof(tokens)));

    /// <summary>The text of each row of token ids [batch, pos].</summary>
    public IReadOnlyList<string> ToTexts(Tensor tokens)
    {
        if (tokens.dim() != 2) throw new ModelInputException(nameof(tokens), $"ToTexts takes tokens [batch, pos]; got {ShapeText.Of(tokens.shape)}. Use ToText for one sequence.");
        return [.. Enumerable.Range(0, (int)tokens.shape[0]).Select(b => Tokenizer.Decode(SingleSequence(tokens[b], nameof(tokens))))];
    }

    /// <summary>The id of a string that is exactly one token, as TransformerLens's to_single_token.</summary>
    public int ToSingleToken(string text) => Tokenizer.ToSingleToken(text);

    /// <summary>Logits [1, pos, d_vocab] for a text, BOS first unless <paramref name="prependBos"/> is false.</summary>
    public Tensor Run(string text, bool prependBos = true)
    {
        using var scope = torch.NewDisposeScope();
        return Run(ToTokens(text, prependBos)).MoveToOuterDisposeScope();
    }

    List<int> EncodeIds(string text, bool prependBos)
    {
        var ids = new List<int>();
        if (prependBos)
        {
            int bos = Config.BosTokenId ?? Tokenizer.BosTokenId ?? throw new MissingTokenizerException(
                $"prependBos is true but neither {Config.ModelName}'s config nor tokenizer {Tokenizer.Name} has a BOS token; pass prependBos: false.");
            ids.Add(bos);
        }
        ids.AddRange(Tokenizer.Encode(text));
        return ids;
    }

    static int[] SingleSequence(Tensor tokens, string argument)
    {
        if (tokens.dim() == 2 && tokens.shape[0] == 1) tokens = tokens[0];
        if (tokens.dim() != 1)
            throw new ModelInputException(argument, $"Expected token ids [pos] or [1, pos]; got {ShapeText.Of(tokens.shape)}. Use ToTexts for a batch.");
        return tokens.to(ScalarType.Int32).cpu().data<int>().ToArray();
    }
}

/// <summary>Text was given to a model that has no tokenizer (or no BOS token to prepend).</summary>
public sealed class MissingTokenizerException(string message) : SharpLensException(message);
