using System.Text;
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

    readonly Func<string, IReadOnlyList<int>> _encode;
    readonly Func<IEnumerable<int>, string?> _decode;

    ModelTokenizer(string name, Tokenizer inner, int vocabSize, int? bos, int? eos, int pad)
        : this(name, text => inner.EncodeToIds(text), ids => inner.Decode(ids), vocabSize, bos, eos, pad) { }

    ModelTokenizer(string name, Func<string, IReadOnlyList<int>> encode, Func<IEnumerable<int>, string?> decode, int vocabSize, int? bos, int? eos, int pad)
    {
        (Name, _encode, _decode, VocabSize, BosTokenId, EosTokenId, PadTokenId) = (name, encode, decode, vocabSize, bos, eos, pad);
    }

    Func<int, string>? _tokenText;
    Func<string, IReadOnlyList<int>>? _encodeWithSpecialTokens;

    /// <summary>A tokenizer from its parts (SentencePiece and Hugging Face tokenizer.json readers).</summary>
    /// <param name="tokenText">an id's vocabulary string (Hugging Face's convert_ids_to_tokens)</param>
    /// <param name="encodeWithSpecialTokens">Hugging Face's <c>tokenizer(text).input_ids</c>: BOS / EOS as the tokenizer files say</param>
    internal static ModelTokenizer Create(string name, Func<string, IReadOnlyList<int>> encode, Func<IEnumerable<int>, string?> decode, int vocabSize,
        int? bos, int? eos, int pad, Func<int, string> tokenText, Func<string, IReadOnlyList<int>> encodeWithSpecialTokens) =>
        new(name, encode, decode, vocabSize, bos, eos, pad) { _tokenText = tokenText, _encodeWithSpecialTokens = encodeWithSpecialTokens };

    /// <summary>
    /// Token ids as Hugging Face's <c>tokenizer(text)["input_ids"]</c> gives them: with the BOS / EOS its files ask for
    /// (tokenizer_config.json's add_bos_token / add_eos_token, or tokenizer.json's post-processor). GPT-2-style
    /// tokenizers add nothing.
    /// </summary>
    public IReadOnlyList<int> EncodeWithSpecialTokens(string text) => _encodeWithSpecialTokens?.Invoke(text) ?? Encode(text);

    /// <summary>tokenizer_config.json's chat_template (or chat_template.jinja), when the tokenizer files have one.</summary>
    public ChatTemplates.ChatTemplate? ChatTemplate { get; internal set; }
    /// <summary>The special tokens a chat template sees (bos_token, eos_token, unk_token, pad_token, ...), by name.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; internal set; } = new Dictionary<string, string>();

    /// <summary>
    /// The prompt text of a conversation, rendered by the tokenizer's chat template as transformers' apply_chat_template
    /// (tokenize=False) renders it; tokenize it with <see cref="Encode"/> (the template puts in BOS itself).
    /// </summary>
    public string ApplyChatTemplate(IReadOnlyList<ChatTemplates.ChatMessage> messages, bool addGenerationPrompt)
    {
        var template = ChatTemplate ?? throw new ChatTemplates.ChatTemplateException(
            $"{Name} has no chat template: tokenizer_config.json gives no chat_template (and there is no chat_template.jinja). Base models often have none; use an instruct model's tokenizer files.");
        return template.Render(messages, addGenerationPrompt, SpecialTokens.ToDictionary(kv => kv.Key, kv => (object?)kv.Value));
    }

    /// <summary>The vocabulary string of each id (Hugging Face's convert_ids_to_tokens: ▁ for spaces, &lt;0x0A&gt; for bytes), or each id decoded alone where the vocabulary is not at hand.</summary>
    public IReadOnlyList<string> TokenTexts(IEnumerable<int> ids) =>
        [.. CheckIds(ids).Select(id => _tokenText?.Invoke(id) ?? _decode([id]) ?? "")];

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
        _ => throw new ArgumentException(
            $"No built-in tokenizer is named '{name}'; the built-in one is 'gpt2'. Load others with ModelTokenizer.FromFolder(folder with vocab.json and merges.txt).", nameof(name)),
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
        try { vocab = JsonSerializer.Deserialize(File.ReadAllText(vocabPath), IO.PlainJsonContext.Default.DictionaryStringInt32) ?? []; }
        catch (JsonException e) { throw new TokenizerFilesException(vocabPath, $"'{vocabPath}' is not a JSON object of token → id: {e.Message}"); }
        if (vocab.Count == 0) throw new TokenizerFilesException(vocabPath, $"'{vocabPath}' holds no tokens.");
        CheckedVocabSize(vocab.Values, vocabPath, "an entry");

        var named = ReadSpecialTokenNames(Path.Combine(folder, "special_tokens_map.json"));
        int? IdOf(string? token) => token is not null && vocab.TryGetValue(token, out int id) ? id : null;
        int? bos = IdOf(named.GetValueOrDefault("bos_token") ?? EndOfText);
        int? eos = IdOf(named.GetValueOrDefault("eos_token") ?? EndOfText);
        int pad = IdOf(named.GetValueOrDefault("pad_token")) ?? eos ?? bos ?? 0;

        // Special tokens are matched whole in the text before the BPE split, as Hugging Face's added tokens are.
        var special = named.Values.Append(EndOfText).Distinct().Where(vocab.ContainsKey).ToDictionary(t => t, t => vocab[t]);
        Tokenizer inner;
        try
        {
            // BpeOptions reads both files itself: a malformed merges.txt fails here.
            var options = new BpeOptions(vocabPath, mergesPath)
            {
                ByteLevel = true,
                SpecialTokens = special,
                PreTokenizer = new RegexPreTokenizer(new Regex(Gpt2SplitPattern, RegexOptions.Compiled, SplitTimeout), special),
            };
            inner = BpeTokenizer.Create(options);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException)
        {
            throw new TokenizerFilesException(mergesPath, $"Could not build a BPE tokenizer from '{vocabPath}' and '{mergesPath}': {e.Message}");
        }
        return new ModelTokenizer(folder, inner, CheckedVocabSize(vocab.Values, vocabPath, "an entry"), bos, eos, pad);
    }

    /// <summary>
    /// A llama2.c tokenizer as a model's tokenizer: ids 1 and 2 are BOS and EOS; text is encoded as llama2.c does (a
    /// leading space piece, then score-ordered merges), with BOS put first by the model when asked.
    /// </summary>
    public static ModelTokenizer FromLlama2c(Llama2cTokenizer tokenizer, string name) =>
        new(name, text => tokenizer.Encode(text, bos: false), tokenizer.Decode, tokenizer.VocabSize, Llama2cTokenizer.Bos, Llama2cTokenizer.Eos, pad: 0);

    /// <summary>
    /// Reads a byte-level BPE tokenizer from a Hugging Face <c>tokenizer.json</c> (what GPT-NeoX / Pythia, Qwen2 and
    /// Llama 3 repositories ship instead of vocab.json + merges.txt): <c>model</c> of type BPE without byte fallback, and a
    /// pre-tokenizer that is either ByteLevel with its regex (GPT-2's split) or a Split by a regex followed by ByteLevel
    /// without one (that regex is used). BOS / EOS come from <c>tokenizer_config.json</c> or <c>special_tokens_map.json</c>
    /// beside it when present. Anything else (SentencePiece-style byte fallback and Metaspace, normalizers other than
    /// none or NFC) is refused by name rather than tokenized differently from Hugging Face.
    /// </summary>
    public static ModelTokenizer FromTokenizerJson(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        // Any shape the reader does not expect (a missing key, a number where a string belongs, nesting past the JSON
        // depth limit, a pattern that is not a regex) is a refusal naming the file, never an unexplained exception.
        try { return ReadTokenizerJson(path); }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException or OverflowException or IndexOutOfRangeException)
        {
            throw new TokenizerFilesException(path, $"{path} is not a tokenizer.json this reader understands: {e.Message}");
        }
    }

    static ModelTokenizer ReadTokenizerJson(string path)
    {
        if (!File.Exists(path)) throw new TokenizerFilesException(path, $"No tokenizer.json at '{path}'.");
        TokenizerFilesException Bad(string problem) => new(path, $"{path}: {problem}");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        var model = root.GetProperty("model");
        string type = model.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        if (type != "BPE") throw Bad($"model.type is \"{type}\"; only byte-level BPE tokenizer.json files are read (Unigram / WordPiece are not).");
        if (model.TryGetProperty("byte_fallback", out var fallback) && fallback.ValueKind == JsonValueKind.True)
            throw Bad("model.byte_fallback is true: a SentencePiece-style BPE (Llama 2, Mistral, Gemma), which this reader does not support yet; give token ids instead.");
        bool nfc = false;
        if (root.TryGetProperty("normalizer", out var normalizer) && normalizer.ValueKind != JsonValueKind.Null)
        {
            nfc = normalizer.TryGetProperty("type", out var nt) && nt.GetString() == "NFC"; // Qwen2
            if (!nfc) throw Bad($"normalizer {normalizer.GetRawText()} is not supported (only none or NFC).");
        }

        string pattern = SplitPattern(root.TryGetProperty("pre_tokenizer", out var pre) ? pre : default, Bad);
        var vocab = model.GetProperty("vocab").EnumerateObject().ToDictionary(e => e.Name, e => e.Value.GetInt32());
        var merges = model.GetProperty("merges").EnumerateArray().Select(m => m.ValueKind == JsonValueKind.Array
            ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!).ToList(); // "a b", or ["a", "b"] in newer files
        var added = root.TryGetProperty("added_tokens", out var a)
            ? a.EnumerateArray().Where(x => x.TryGetProperty("special", out var sp) && sp.GetBoolean())
                .ToDictionary(x => x.GetProperty("content").GetString()!, x => x.GetProperty("id").GetInt32())
            : [];
        foreach (var (token, id) in added) vocab.TryAdd(token, id);

        string folder = System.IO.Path.GetDirectoryName(path)!;
        var named = ReadSpecialTokenNames(System.IO.Path.Combine(folder, "special_tokens_map.json"));
        foreach (var (key, value) in ReadSpecialTokenNames(System.IO.Path.Combine(folder, "tokenizer_config.json"))) named.TryAdd(key, value);
        int? IdOf(string? token) => token is not null && vocab.TryGetValue(token, out int id) ? id : null;
        int? bos = IdOf(named.GetValueOrDefault("bos_token")), eos = IdOf(named.GetValueOrDefault("eos_token"));
        int pad = IdOf(named.GetValueOrDefault("pad_token")) ?? eos ?? bos ?? 0;

        // BpeTokenizer reads vocab.json + merges.txt; hand it this file's, written to a private temporary folder.
        string temporary = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"sharplens-tokenizer-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temporary);
        try
        {
            string vocabPath = System.IO.Path.Combine(temporary, "vocab.json"), mergesPath = System.IO.Path.Combine(temporary, "merges.txt");
            File.WriteAllText(vocabPath, JsonSerializer.Serialize(vocab, IO.PlainJsonContext.Default.DictionaryStringInt32));
            File.WriteAllText(mergesPath, "#version: 0.2\n" + string.Join("\n", merges) + "\n");
            var options = new BpeOptions(vocabPath, mergesPath)
            {
                ByteLevel = true,
                SpecialTokens = added,
                PreTokenizer = new RegexPreTokenizer(new Regex(pattern, RegexOptions.Compiled, SplitTimeout), added),
            };
            Tokenizer inner;
            try { inner = BpeTokenizer.Create(options); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or IOException)
            {
                throw Bad($"could not build a BPE tokenizer from its vocab and merges: {e.Message}");
            }
            int vocabSize = CheckedVocabSize(vocab.Values, path, "model.vocab");
            return nfc
                ? new ModelTokenizer(path, text => inner.EncodeToIds(text.Normalize(NormalizationForm.FormC)), ids => inner.Decode(ids), vocabSize, bos, eos, pad)
                : new ModelTokenizer(path, inner, vocabSize, bos, eos, pad);
        }
        finally { Directory.Delete(temporary, recursive: true); }
    }

    /// <summary>The regex that splits text before BPE, from tokenizer.json's pre_tokenizer.</summary>
    static string SplitPattern(JsonElement pre, Func<string, TokenizerFilesException> bad)
    {
        static string TypeOf(JsonElement e) => e.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
        static bool Flag(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;
        if (pre.ValueKind == JsonValueKind.Object && TypeOf(pre) == "ByteLevel")
        {
            if (Flag(pre, "add_prefix_space")) throw bad("pre_tokenizer ByteLevel adds a prefix space, which this reader does not do.");
            if (pre.TryGetProperty("use_regex", out var useRegex) && useRegex.ValueKind == JsonValueKind.False)
                throw bad("pre_tokenizer ByteLevel without its regex and without a Split before it: no split to apply.");
            return Gpt2SplitPattern;
        }
        if (pre.ValueKind == JsonValueKind.Object && TypeOf(pre) == "Sequence")
        {
            var parts = pre.GetProperty("pretokenizers").EnumerateArray().ToList();
            if (parts.Count == 2 && TypeOf(parts[0]) == "Split" && TypeOf(parts[1]) == "ByteLevel" && !Flag(parts[1], "add_prefix_space") &&
                parts[0].GetProperty("pattern").TryGetProperty("Regex", out var regex) &&
                (!parts[0].TryGetProperty("behavior", out var behavior) || behavior.GetString() == "Isolated") && !Flag(parts[0], "invert") &&
                !(parts[1].TryGetProperty("use_regex", out var inner) && inner.ValueKind == JsonValueKind.True))
                return regex.GetString()!;
        }
        throw bad($"pre_tokenizer {(pre.ValueKind == JsonValueKind.Undefined ? "(none)" : pre.GetRawText())} is not one this reader knows " +
                  "(ByteLevel with its regex, or Split(regex, Isolated) then ByteLevel).");
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
                if (value.ValueKind == JsonValueKind.String && entry.Name.EndsWith("_token", StringComparison.Ordinal)) names[entry.Name] = value.GetString()!;
            }
        }
        catch (JsonException e) { throw new TokenizerFilesException(path, $"'{path}' is not valid JSON: {e.Message}"); }
        return names;
    }

    /// <summary>Token ids of the text, with no BOS added (special tokens written in the text become their ids).</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        try { return _encode(text); }
        catch (RegexMatchTimeoutException)
        {
            throw new TokenizerFilesException(Name, $"{Name}: its pre-tokenizer pattern ran for more than {SplitTimeout.TotalSeconds:0} s on a {text.Length}-character text " +
                "(catastrophic backtracking); the tokenizer file's Split regex is broken.");
        }
    }

    /// <summary>How long a pre-tokenizer regex may run on one text before the tokenizer file is blamed.</summary>
    public static readonly TimeSpan SplitTimeout = TimeSpan.FromSeconds(2);

    /// <summary>The vocabulary size ids imply (max + 1), refusing negative ids and ids no real vocabulary reaches.</summary>
    static int CheckedVocabSize(IEnumerable<int> ids, string path, string field)
    {
        const int MaxId = 1 << 24; // 16.7 M: ten times the largest real vocabulary
        int max = -1;
        foreach (int id in ids)
        {
            if (id < 0 || id >= MaxId) throw new TokenizerFilesException(path, $"{path}: {field} has the id {id}; ids run from 0 to at most {MaxId - 1:N0}.");
            max = Math.Max(max, id);
        }
        return max + 1;
    }

    /// <summary>The text of these ids; bytes that do not complete a character become U+FFFD.</summary>
    public string Decode(IEnumerable<int> ids) => _decode(CheckIds(ids)) ?? "";

    /// <summary>Each id decoded alone, as TransformerLens's <c>to_str_tokens</c>: a token holding part of a character shows U+FFFD.</summary>
    public IReadOnlyList<string> ToStrTokens(IEnumerable<int> ids) => [.. CheckIds(ids).Select(id => _decode([id]) ?? "")];

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
public sealed class TokenizerFilesException(string path, string message, string? field = null) : SharpLensFileException(path, field, message)
{
    public string Path { get; } = path;
}
