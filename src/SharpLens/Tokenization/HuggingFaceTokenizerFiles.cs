using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Tokenization.SentencePiece;

namespace SharpLens.Tokenization;

/// <summary>
/// The tokenizer of a Hugging Face folder, picked as <c>AutoTokenizer.from_pretrained</c> picks it (the folder may hold
/// tokenizer files only):
/// <list type="number">
/// <item><c>tokenizer.json</c> (the fast tokenizer, which wins when <c>tokenizer.model</c> is there too): run by Hugging
/// Face's own Rust tokenizers through Tokenizers.DotNet, so byte-fallback BPE, Metaspace, Prepend / Replace normalizers,
/// fuse_unk, added tokens and the post-processor behave exactly as in Python;</item>
/// <item><c>vocab.json</c> + <c>merges.txt</c> (GPT-2-style byte-level BPE, <see cref="ModelTokenizer.FromFolder"/>);</item>
/// <item><c>tokenizer.model</c> (SentencePiece BPE: Llama 2, Mistral, Gemma), encoded as the sentencepiece library does
/// (<see cref="SentencePieceBpe"/>), with the added tokens split out first as Hugging Face's slow tokenizers do.</item>
/// </list>
/// <c>tokenizer_config.json</c>'s <c>add_bos_token</c> / <c>add_eos_token</c> and its bos / eos / pad tokens are honoured
/// as Hugging Face honours them.
/// </summary>
public static class HuggingFaceTokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json", SentencePieceModel = "tokenizer.model", TokenizerConfig = "tokenizer_config.json";

    /// <summary>True when the folder holds a tokenizer this class reads.</summary>
    public static bool HasTokenizer(string folder) =>
        File.Exists(Path.Combine(folder, TokenizerJson)) || File.Exists(Path.Combine(folder, SentencePieceModel)) ||
        (File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt")));

    /// <summary>The folder's tokenizer, as AutoTokenizer would load it.</summary>
    public static ModelTokenizer Load(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (File.Exists(Path.Combine(folder, TokenizerJson))) return FromTokenizerJson(Path.Combine(folder, TokenizerJson));
        if (File.Exists(Path.Combine(folder, "vocab.json")) && File.Exists(Path.Combine(folder, "merges.txt"))) return WithChatTemplate(ModelTokenizer.FromFolder(folder), folder);
        if (File.Exists(Path.Combine(folder, SentencePieceModel))) return FromSentencePiece(Path.Combine(folder, SentencePieceModel));
        throw new TokenizerFilesException(folder, $"'{folder}' holds no tokenizer: SharpLens reads tokenizer.json, vocab.json + merges.txt, or a SentencePiece tokenizer.model. Copy them from the model's Hugging Face repository.");
    }

    /// <summary>The tokenizer with the folder's chat template and special-token names (for tokenizers read by other readers).</summary>
    public static ModelTokenizer WithChatTemplate(ModelTokenizer tokenizer, string folder)
    {
        if (tokenizer.ChatTemplate is not null) return tokenizer;
        var config = Config.Read(folder);
        (tokenizer.ChatTemplate, tokenizer.SpecialTokens) = (config.ChatTemplate, config.SpecialTokens);
        return tokenizer;
    }

    /// <summary>tokenizer_config.json's fields that decide special tokens, when the file is there.</summary>
    sealed record Config(bool? AddBos, bool? AddEos, string? Bos, string? Eos, string? Pad, string? Unk, string? TokenizerClass, IReadOnlyList<string> AddedTokens,
        IReadOnlyDictionary<string, string> SpecialTokens, ChatTemplates.ChatTemplate? ChatTemplate)
    {
        public static Config Read(string folder)
        {
            string path = Path.Combine(folder, TokenizerConfig);
            var names = new Dictionary<string, string>();
            bool? addBos = null, addEos = null;
            string? tokenizerClass = null;
            var added = new List<string>();
            string? template = null;
            foreach (var file in new[] { Path.Combine(folder, "special_tokens_map.json"), path })
            {
                if (!File.Exists(file)) continue;
                JsonObject root;
                try { root = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new JsonException("not a JSON object"); }
                catch (JsonException e) { throw new TokenizerFilesException(file, $"'{file}' is not valid JSON: {e.Message}"); }
                foreach (var (key, value) in root)
                {
                    var content = value is JsonObject o ? o["content"] : value;
                    if (key.EndsWith("_token", StringComparison.Ordinal) && content is JsonValue v && v.TryGetValue<string>(out var text)) names[key] = text;
                }
                if (file != path) continue;
                addBos = Bool(root, "add_bos_token", file);
                addEos = Bool(root, "add_eos_token", file);
                tokenizerClass = root["tokenizer_class"] is JsonValue c && c.TryGetValue<string>(out var cls) ? cls : null;
                template = root["chat_template"] switch
                {
                    JsonValue t when t.TryGetValue<string>(out var text) => text,
                    // A list of named templates: transformers uses "default".
                    JsonArray named => named.OfType<JsonObject>().FirstOrDefault(n => n["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>(),
                    _ => null,
                };
                if (root["added_tokens_decoder"] is JsonObject decoder)
                    foreach (var (_, entry) in decoder)
                        if (entry?["content"] is JsonValue content && content.TryGetValue<string>(out var token)) added.Add(token);
            }
            string jinja = Path.Combine(folder, "chat_template.jinja");
            if (File.Exists(jinja)) template = File.ReadAllText(jinja);
            ChatTemplates.ChatTemplate? chat = null;
            if (template is not null)
            {
                try { chat = new ChatTemplates.ChatTemplate(template); }
                catch (ChatTemplates.ChatTemplateException e) { throw new ChatTemplates.ChatTemplateException($"{(File.Exists(jinja) ? jinja : path)}: {e.Message}"); }
            }
            return new Config(addBos, addEos, names.GetValueOrDefault("bos_token"), names.GetValueOrDefault("eos_token"),
                names.GetValueOrDefault("pad_token"), names.GetValueOrDefault("unk_token"), tokenizerClass, added, names, chat);
        }

        static bool? Bool(JsonObject root, string key, string file) => root[key] switch
        {
            null => null,
            JsonValue v when v.TryGetValue<bool>(out var b) => b,
            var other => throw new TokenizerFilesException(file, $"{file}: \"{key}\" is {other.ToJsonString()}, not true or false."),
        };

        /// <summary>Llama and Gemma tokenizers add BOS unless told otherwise; others only when asked.</summary>
        public bool LlamaLike => TokenizerClass is { } c && (c.StartsWith("Llama", StringComparison.Ordinal) || c.StartsWith("Gemma", StringComparison.Ordinal) || c.StartsWith("CodeLlama", StringComparison.Ordinal));
    }

    /// <summary>
    /// A SentencePiece tokenizer.model with Hugging Face's slow-tokenizer conventions: add_bos_token (default true) and
    /// add_eos_token (default false) from tokenizer_config.json; the control pieces (&lt;s&gt;, &lt;/s&gt;), unk and the
    /// config's added tokens are matched whole in the text and the pieces between them encoded one by one.
    /// </summary>
    public static ModelTokenizer FromSentencePiece(string path)
    {
        path = Path.GetFullPath(path);
        var bpe = new SentencePieceBpe(SentencePieceModelFile.Read(path));
        var model = bpe.Model;
        var config = Config.Read(Path.GetDirectoryName(path)!);
        int? IdOf(string? token, int fallback) => token is null ? (fallback >= 0 && fallback < bpe.VocabSize ? fallback : null) : bpe.IdOf(token);
        int? bos = IdOf(config.Bos, model.BosId), eos = IdOf(config.Eos, model.EosId);
        int pad = IdOf(config.Pad, model.PadId) ?? eos ?? bos ?? 0;
        bool addBos = config.AddBos ?? true, addEos = config.AddEos ?? false;

        var special = model.Pieces.Where(p => p.Type is PieceType.Control or PieceType.Unknown).Select(p => p.Text)
            .Concat(config.AddedTokens).Where(t => t.Length > 0 && bpe.IdOf(t) is not null).Distinct().OrderByDescending(t => t.Length).ToArray();
        IReadOnlyList<int> Encode(string text)
        {
            var ids = new List<int>();
            int start = 0;
            for (int at = 0; at < text.Length;)
            {
                var hit = special.FirstOrDefault(s => string.CompareOrdinal(text, at, s, 0, s.Length) == 0);
                if (hit is null) { at++; continue; }
                if (at > start) ids.AddRange(bpe.Encode(text[start..at]));
                ids.Add(bpe.IdOf(hit)!.Value);
                at += hit.Length;
                start = at;
            }
            if (start < text.Length) ids.AddRange(bpe.Encode(text[start..]));
            return ids;
        }
        IReadOnlyList<int> EncodeWithSpecialTokens(string text)
        {
            var ids = new List<int>();
            if (addBos && bos is int b) ids.Add(b);
            ids.AddRange(Encode(text));
            if (addEos && eos is int e) ids.Add(e);
            return ids;
        }
        var result = ModelTokenizer.Create(path, Encode, ids => bpe.Decode(ids), bpe.VocabSize, bos, eos, pad, bpe.PieceOf, EncodeWithSpecialTokens);
        (result.ChatTemplate, result.SpecialTokens) = (config.ChatTemplate, config.SpecialTokens);
        return result;
    }

    /// <summary>
    /// A tokenizer.json run by Hugging Face's Rust tokenizers (Tokenizers.DotNet): ids as <c>tokenizer(text)</c> gives
    /// them, with the file's post-processor, unless tokenizer_config.json sets add_bos_token / add_eos_token (which
    /// transformers then turns into the post-processor: BOS first, EOS last). Padding and truncation stored in the file
    /// are not applied, as transformers does not apply them to a plain call.
    /// </summary>
    public static ModelTokenizer FromTokenizerJson(string path)
    {
        path = Path.GetFullPath(path);
        // A shape this reader does not expect (a key twice, a node of the wrong kind) is a refusal naming the file.
        try { return ReadTokenizerJson(path); }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or OverflowException or KeyNotFoundException)
        {
            throw new TokenizerFilesException(path, $"{path} is not a tokenizer.json this reader understands: {e.Message}");
        }
    }

    static ModelTokenizer ReadTokenizerJson(string path)
    {
        if (!File.Exists(path)) throw new TokenizerFilesException(path, $"No tokenizer.json at '{path}'.");
        if (new FileInfo(path).Length > 256L << 20) throw new TokenizerFilesException(path, $"'{path}' is larger than 256 MiB; no tokenizer.json is that large. Is it the right file?");
        JsonObject root;
        try { root = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new TokenizerFilesException(path, $"'{path}' is not a tokenizer.json (JSON object): {e.Message}"); }

        // Every id's string: the model's vocabulary, then the added tokens.
        var tokens = new Dictionary<int, string>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        var special = new HashSet<int>();
        switch (root["model"]?["vocab"])
        {
            case JsonObject vocab:
                foreach (var (token, id) in vocab) if (id is JsonValue v && v.TryGetValue<int>(out int i)) (tokens[i], ids[token]) = (token, i);
                break;
            case JsonArray unigram: // Unigram: [[piece, score], ...]
                for (int i = 0; i < unigram.Count; i++) if (unigram[i] is JsonArray entry && entry[0] is JsonValue t && t.TryGetValue<string>(out var piece)) (tokens[i], ids[piece]) = (piece, i);
                break;
            default: throw new TokenizerFilesException(path, $"{path}: model.vocab is missing; is this a tokenizer.json?");
        }
        if (root["added_tokens"] is JsonArray addedTokens)
            foreach (var entry in addedTokens.OfType<JsonObject>())
                if (entry["id"] is JsonValue idValue && idValue.TryGetValue<int>(out int id) && entry["content"] is JsonValue c && c.TryGetValue<string>(out var content))
                {
                    (tokens[id], ids[content]) = (content, id);
                    if (entry["special"] is JsonValue sp && sp.TryGetValue<bool>(out bool isSpecial) && isSpecial) special.Add(id);
                }
        if (tokens.Count == 0) throw new TokenizerFilesException(path, $"{path}: the vocabulary is empty.");
        // Ids are dense in every real vocabulary; a stray huge or negative id would size tables by it (in the native library too).
        int lowest = tokens.Keys.Min(), highest = tokens.Keys.Max();
        if (lowest < 0 || highest >= 2 * tokens.Count + 1024)
            throw new TokenizerFilesException(path, $"{path}: token id {(lowest < 0 ? lowest : highest)} is out of range for a vocabulary of {tokens.Count} tokens; ids run from 0 to about the vocabulary size.");
        int vocabSize = highest + 1;

        var config = Config.Read(Path.GetDirectoryName(path)!);
        int? IdOf(string? token) => token is not null && ids.TryGetValue(token, out int id) ? id : null;
        int? bos = IdOf(config.Bos), eos = IdOf(config.Eos);
        int pad = IdOf(config.Pad) ?? eos ?? bos ?? 0;

        // What the Rust library would panic on (ending the process) is refused first, by field.
        NativeTokenizerGuard.Check(path, root, vocabSize);
        var full = Native(path, root, keepPostProcessor: true);
        var raw = Native(path, root, keepPostProcessor: false);
        IReadOnlyList<int> Encode(string text) => Guarded<IReadOnlyList<int>>(path, "encode", () => [.. raw.Encode(text).Select(i => (int)i)]);
        IReadOnlyList<int> EncodeWithSpecialTokens(string text)
        {
            if (config.AddBos is null && config.AddEos is null) return Guarded<IReadOnlyList<int>>(path, "encode", () => [.. full.Encode(text).Select(i => (int)i)]);
            // transformers rebuilds the post-processor from these flags: BOS, the text, EOS.
            bool addBos = config.AddBos ?? config.LlamaLike, addEos = config.AddEos ?? false;
            var result = new List<int>();
            if (addBos && bos is int b) result.Add(b);
            result.AddRange(Encode(text));
            if (addEos && eos is int e) result.Add(e);
            return result;
        }
        // The native decoder drops special tokens; they are kept (as transformers' decode does by default) by decoding the runs between them.
        string Decode(IEnumerable<int> all)
        {
            var text = new System.Text.StringBuilder();
            var run = new List<uint>();
            void Flush() { if (run.Count > 0) text.Append(Guarded(path, "decode", () => raw.Decode([.. run]))); run.Clear(); }
            foreach (int id in all)
            {
                if (special.Contains(id)) { Flush(); text.Append(tokens[id]); }
                else run.Add((uint)id);
            }
            Flush();
            return text.ToString();
        }
        var result = ModelTokenizer.Create(path, Encode, Decode, vocabSize, bos, eos, pad, id => tokens.GetValueOrDefault(id, ""), EncodeWithSpecialTokens);
        (result.ChatTemplate, result.SpecialTokens) = (config.ChatTemplate, config.SpecialTokens);
        return result;
    }

    /// <summary>An encode or decode by the Rust library: its error (an unknown token the model needs and lacks, say) names the file.</summary>
    static T Guarded<T>(string path, string what, Func<T> call)
    {
        try { return call(); }
        catch (Tokenizers.DotNet.TokenizerException e)
        {
            throw new TokenizerFilesException(path, $"{path}: Hugging Face's tokenizers library could not {what} with this tokenizer: {e.Message}. " +
                "The file loads but is not usable; is it damaged (e.g. an unk_token its vocabulary lacks)?", "model");
        }
    }

    /// <summary>The file loaded by Hugging Face's Rust tokenizers, without its stored padding and truncation (and, for raw ids, without its post-processor).</summary>
    static Tokenizers.DotNet.Tokenizer Native(string path, JsonObject root, bool keepPostProcessor)
    {
        var copy = (JsonObject)root.DeepClone();
        copy["padding"] = null;
        copy["truncation"] = null;
        if (!keepPostProcessor) copy["post_processor"] = null;
        string temporary = Path.Combine(Path.GetTempPath(), $"sharplens-tokenizer-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(temporary, copy.ToJsonString());
            try { return new Tokenizers.DotNet.Tokenizer(temporary); }
            catch (Exception e) when (e is Tokenizers.DotNet.TokenizerException or DllNotFoundException or EntryPointNotFoundException or TypeInitializationException)
            {
                throw new TokenizerFilesException(path, $"{path}: Hugging Face's tokenizers library could not load it: {e.Message}");
            }
        }
        finally { File.Delete(temporary); }
    }
}
