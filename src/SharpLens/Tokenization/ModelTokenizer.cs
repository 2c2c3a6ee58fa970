using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace SharpLens.Tokenization;

/// <summary>
/// A model's tokenizer as SharpLens uses it: text ↔ token ids, and one string per token as TransformerLens's
/// <c>to_str_tokens</c> shows them. GPT-2 byte-level BPE comes built in (<see cref="Gpt2"/>); any GPT-2-style
/// Hugging Face folder with <c>vocab.json</c> + <c>merges.txt</c> loads with <see cref="FromFolder"/>.
/// </summary>
public sealed class ModelTokenizer
{
    /// <summary>
    /// GPT-2's pre-tokenizer split: contractions, letters with an optional leading space, digits likewise,
    /// other symbols likewise, and whitespace runs that leave their last space for the next word.
    /// </summary>
    public const string Gpt2SplitPattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    const string EndOfText = "<|endoftext|>";
    static readonly Lazy<ModelTokenizer> BuiltInGpt2 = new(() =>
    {
        var inner = TiktokenTokenizer.CreateForModel("gpt2");
        const int endOfText = 50256;
        return new ModelTokenizer("gpt2", inner, vocabSize: endOfText + 1, bos: endOfText, eos: endOfText, pad: endOfText);
    });

    readonly Tokenizer _inner;

    ModelTokenizer(string name, Tokenizer inner, int vocabSize, int? bos, int? eos, int pad)
    {
        (Name, _inner, VocabSize, BosTokenId, EosTokenId, PadTokenId) = (name, inner, vocabSize, bos, eos, pad);
    }

    /// <summary>Where the tokenizer came from: "gpt2" or the folder it was read from.</summary>
    public string Name { get; }
    /// <summary>Number of token ids (largest id + 1), special tokens included.</summary>
    public int VocabSize { get; }
    /// <summary>Token that starts a sequence when <c>prependBos</c> is asked for; null when the tokenizer has none.</summary>
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    /// <summary>Filler for padded batches; the attention mask hides it, so its value never reaches a real token.</summary>
    public int PadTokenId { get; }

    /// <summary>GPT-2's tokenizer (50,257 ids; <c>&lt;|endoftext|&gt;</c> = 50256 is BOS, EOS and padding), from the bundled data.</summary>
    public static ModelTokenizer Gpt2() => BuiltInGpt2.Value;

    /// <summary>The tokenizer a model names in <c>ModelConfig.TokenizerName</c>.</summary>
    public static ModelTokenizer ForName(string name) => name.ToLowerInvariant() switch
    {
        "gpt2" or "gpt-2" or "openai-community/gpt2" => Gpt2(),
        _ => throw new NotSupportedException(
            $"No built-in tokenizer is named '{name}'; the built-in one is 'gpt2'. Load others with ModelTokenizer.FromFolder(folder with vocab.json and merges.txt)."),
    };

    /// <summary>
    /// Reads a GPT-2-style byte-level BPE tokenizer from a Hugging Face model folder: <c>vocab.json</c> (token → id),
    /// <c>merges.txt</c> (merge rules, highest priority first) and, if present, <c>special_tokens_map.json</c>
    /// naming the BOS / EOS / padding tokens (default: <c>&lt;|endoftext|&gt;</c> for all three, as GPT-2).
    /// </summary>
    public static ModelTokenizer FromFolder(string folder)
    {
        string vocabPath = Path.Combine(folder, "vocab.json"), mergesPath = Path.Combine(folder, "merges.txt");
        foreach (var path in new[] { vocabPath, mergesPath })
            if (!File.Exists(path))
                throw new TokenizerFilesException(path, $"Tokenizer file '{path}' is missing: a byte-level BPE tokenizer needs vocab.json and merges.txt in '{folder}'. Copy them from the model's Hugging Face repository.");

        Dictionary<string, int> vocab;
        try { vocab = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(vocabPath)) ?? []; }
        catch (JsonException e) { throw new TokenizerFilesException(vocabPath, $"'{vocabPath}' is not a JSON object of token → id: {e.Message}"); }
        if (vocab.Count == 0) throw new TokenizerFilesException(vocabPath, $"'{vocabPath}' holds no tokens.");

        var named = ReadSpecialTokenNames(Path.Combine(folder, "special_tokens_map.json"));
        int? IdOf(string? token) => token is not null && vocab.TryGetValue(token, out int id) ? id : null;
        int? bos = IdOf(named.GetValueOrDefault("bos_token") ?? EndOfText);
        int? eos = IdOf(named.GetValueOrDefault("eos_token") ?? EndOfText);
        int pad = IdOf(named.GetValueOrDefault("pad_token")) ?? eos ?? bos ?? 0;

        // Special tokens are matched whole in the text before the BPE split, as Hugging Face's added tokens are.
        var special = named.Values.Append(EndOfText).Distinct().Where(vocab.ContainsKey).ToDictionary(t => t, t => vocab[t]);
        var options = new BpeOptions(vocabPath, mergesPath)
        {
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(new Regex(Gpt2SplitPattern, RegexOptions.Compiled), special),
        };
        Tokenizer inner;
        try { inner = BpeTokenizer.Create(options); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException)
        {
            throw new TokenizerFilesException(mergesPath, $"Could not build a BPE tokenizer from '{vocabPath}' and '{mergesPath}': {e.Message}");
        }
        return new ModelTokenizer(folder, inner, vocab.Values.Max() + 1, bos, eos, pad);
    }

    static Dictionary<string, string> ReadSpecialTokenNames(string path)
    {
        var names = new Dictionary<string, string>();
        if (!File.Exists(path)) return names;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                // A token is written either as its text or as {"content": text, ...}.
                var value = entry.Value;
                if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content)) value = content;
                if (value.ValueKind == JsonValueKind.String) names[entry.Name] = value.GetString()!;
            }
        }
        catch (JsonException e) { throw new TokenizerFilesException(path, $"'{path}' is not valid JSON: {e.Message}"); }
        return names;
    }

    /// <summary>Token ids of the text, with no BOS added (special tokens written in the text become their ids).</summary>
    public IReadOnlyList<int> Encode(string text) => _inner.EncodeToIds(text);

    /// <summary>The text of these ids; bytes that do not complete a character become U+FFFD.</summary>
    public string Decode(IEnumerable<int> ids) => _inner.Decode(CheckIds(ids)) ?? "";

    /// <summary>Each id decoded alone, as TransformerLens's <c>to_str_tokens</c>: a token holding part of a character shows U+FFFD.</summary>
    public IReadOnlyList<string> ToStrTokens(IEnumerable<int> ids) => [.. CheckIds(ids).Select(id => _inner.Decode([id]) ?? "")];

    /// <summary>The id of a text that is exactly one token; throws otherwise.</summary>
    public int ToSingleToken(string text)
    {
        var ids = Encode(text);
        if (ids.Count != 1)
            throw new ArgumentException($"'{text}' is {ids.Count} tokens ({string.Join(" | ", ToStrTokens(ids))}), not one.", nameof(text));
        return ids[0];
    }

    List<int> CheckIds(IEnumerable<int> ids)
    {
        var list = ids.ToList();
        foreach (int id in list)
            if (id < 0 || id >= VocabSize)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the {Name} vocabulary [0, {VocabSize - 1}].");
        return list;
    }

    public override string ToString() => $"ModelTokenizer({Name}, {VocabSize} ids)";
}

/// <summary>A tokenizer file is missing or unreadable; <see cref="Path"/> names it.</summary>
public sealed class TokenizerFilesException(string path, string message) : IOException(message)
{
    public string Path { get; } = path;
}
