using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpLens.Tokenization;

/// <summary>
/// Trains a byte-level BPE tokenizer (GPT-2's scheme, as Hugging Face <c>tokenizers</c>' BpeTrainer with a ByteLevel
/// pre-tokenizer does) and writes it as a Hugging Face <c>tokenizer.json</c>:
/// <list type="number">
/// <item>split the text with GPT-2's regex (<see cref="ModelTokenizer.Gpt2SplitPattern"/>) and count each piece;</item>
/// <item>write every piece as its UTF-8 bytes, one symbol per byte (ids 0…255, shown as GPT-2's printable byte characters);</item>
/// <item>repeatedly merge the most frequent adjacent pair of symbols into a new symbol (ties: the pair with the smaller
/// ids), until the vocabulary, special tokens included, has <see cref="ByteLevelBpeSettings.VocabSize"/> ids or no pair occurs twice.</item>
/// </list>
/// Ids: the 256 bytes, then merges in the order learned, then the special tokens (as GPT-2 puts <c>&lt;|endoftext|&gt;</c> last).
/// </summary>
public static class ByteLevelBpeTrainer
{
    static readonly Regex Split = new(ModelTokenizer.Gpt2SplitPattern, RegexOptions.Compiled);

    /// <summary>Learns merges from <paramref name="texts"/>; see the class summary.</summary>
    public static ByteLevelBpe Train(IEnumerable<string> texts, ByteLevelBpeSettings settings)
    {
        settings = settings.Validated();
        // 1. Pieces and their counts.
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (string text in texts)
            foreach (Match piece in Split.Matches(text))
                counts[piece.Value] = counts.GetValueOrDefault(piece.Value) + 1;

        // 2. Each distinct piece as a list of byte symbols.
        var words = new List<int>[counts.Count];
        var frequency = new long[counts.Count];
        int w = 0;
        foreach (var (piece, count) in counts.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            words[w] = [.. Encoding.UTF8.GetBytes(piece).Select(b => (int)b)];
            frequency[w++] = count;
        }

        // Pair counts, and which words hold each pair.
        var pairCounts = new Dictionary<(int, int), long>();
        var holders = new Dictionary<(int, int), HashSet<int>>();
        void Count(int word, int sign)
        {
            var symbols = words[word];
            for (int i = 0; i + 1 < symbols.Count; i++)
            {
                var pair = (symbols[i], symbols[i + 1]);
                pairCounts[pair] = pairCounts.GetValueOrDefault(pair) + sign * frequency[word];
                if (sign > 0)
                {
                    if (!holders.TryGetValue(pair, out var set)) holders[pair] = set = [];
                    set.Add(word);
                }
            }
        }
        for (int i = 0; i < words.Length; i++) Count(i, +1);

        // 3. Merge the most frequent pair until the vocabulary is full.
        var tokens = new List<byte[]>(settings.VocabSize);
        for (int b = 0; b < 256; b++) tokens.Add([(byte)b]);
        var merges = new List<(int Left, int Right)>();
        int targetTokens = settings.VocabSize - settings.SpecialTokens.Count;
        while (tokens.Count < targetTokens)
        {
            (int, int) best = default;
            long bestCount = 1; // a pair seen once is not worth a token
            foreach (var (pair, count) in pairCounts)
                if (count > bestCount || (count == bestCount && count > 1 && pair.CompareTo(best) < 0)) (best, bestCount) = (pair, count);
            if (bestCount < 2) break;

            int merged = tokens.Count;
            tokens.Add([.. tokens[best.Item1], .. tokens[best.Item2]]);
            merges.Add(best);
            foreach (int word in holders[best].ToList())
            {
                Count(word, -1);
                var symbols = words[word];
                var rewritten = new List<int>(symbols.Count);
                for (int i = 0; i < symbols.Count; i++)
                {
                    if (i + 1 < symbols.Count && symbols[i] == best.Item1 && symbols[i + 1] == best.Item2) { rewritten.Add(merged); i++; }
                    else rewritten.Add(symbols[i]);
                }
                words[word] = rewritten;
                Count(word, +1);
            }
            pairCounts.Remove(best);
            holders.Remove(best);
            // Pairs whose count fell to zero stay out of the search.
            foreach (var dead in pairCounts.Where(p => p.Value <= 0).Select(p => p.Key).ToList()) { pairCounts.Remove(dead); holders.Remove(dead); }
        }
        return new ByteLevelBpe([.. tokens], [.. merges], settings.SpecialTokens);
    }
}

/// <summary>How to train a byte-level BPE tokenizer.</summary>
/// <param name="VocabSize">Ids in all: 256 bytes + merges + special tokens.</param>
/// <param name="SpecialTokens">Tokens matched whole before splitting, given the last ids (e.g. <c>&lt;|endoftext|&gt;</c>).</param>
public sealed record ByteLevelBpeSettings(int VocabSize, IReadOnlyList<string> SpecialTokens)
{
    public ByteLevelBpeSettings Validated()
    {
        if (SpecialTokens.Count == 0 || SpecialTokens.Any(string.IsNullOrEmpty) || SpecialTokens.Distinct().Count() != SpecialTokens.Count)
            throw new TokenizerTrainingException($"Special tokens must be distinct and non-empty; got [{string.Join(", ", SpecialTokens)}].");
        int minimum = 256 + SpecialTokens.Count;
        if (VocabSize < minimum)
            throw new TokenizerTrainingException(
                $"--vocab-size {VocabSize} is too small: a byte-level BPE needs 256 byte tokens + {SpecialTokens.Count} special token(s) ({string.Join(", ", SpecialTokens)}) = {minimum} ids before any merge. Give at least {minimum} (4096 suits a small model).");
        return this;
    }
}

/// <summary>A trained byte-level BPE: each token's bytes, the merges in priority order, and the special tokens.</summary>
public sealed record ByteLevelBpe(byte[][] Tokens, (int Left, int Right)[] Merges, IReadOnlyList<string> SpecialTokens)
{
    /// <summary>Ids in all, special tokens included.</summary>
    public int VocabSize => Tokens.Length + SpecialTokens.Count;
    public int SpecialTokenId(string token) => Tokens.Length + IndexOf(token);

    int IndexOf(string token)
    {
        for (int i = 0; i < SpecialTokens.Count; i++) if (SpecialTokens[i] == token) return i;
        throw new ArgumentException($"'{token}' is not one of this tokenizer's special tokens ({string.Join(", ", SpecialTokens)}).", nameof(token));
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others for U+0100 onwards, so every token is printable text.</summary>
    internal static readonly char[] ByteCharacters = BuildByteCharacters();

    static char[] BuildByteCharacters()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + next++);
        }
        return map;
    }

    /// <summary>A token's text as tokenizer.json spells it (bytes as GPT-2's byte characters).</summary>
    public string TokenText(int id) => id >= Tokens.Length ? SpecialTokens[id - Tokens.Length] : new string([.. Tokens[id].Select(b => ByteCharacters[b])]);

    /// <summary>
    /// Writes <c>tokenizer.json</c> in the layout Hugging Face <c>tokenizers</c> saves for GPT-2: a BPE model with its
    /// vocab and "left right" merges, ByteLevel pre-tokenizer (GPT-2's regex, no prefix space), post-processor and
    /// decoder, no normalizer, and the special tokens as added tokens.
    /// </summary>
    public void WriteTokenizerJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");
        json.WriteStartArray("added_tokens");
        foreach (string special in SpecialTokens)
        {
            json.WriteStartObject();
            json.WriteNumber("id", SpecialTokenId(special));
            json.WriteString("content", special);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("special", true);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNull("normalizer");
        void ByteLevel(string name, bool addPrefixSpace, bool trimOffsets)
        {
            json.WriteStartObject(name);
            json.WriteString("type", "ByteLevel");
            json.WriteBoolean("add_prefix_space", addPrefixSpace);
            json.WriteBoolean("trim_offsets", trimOffsets);
            json.WriteBoolean("use_regex", true);
            json.WriteEndObject();
        }
        ByteLevel("pre_tokenizer", addPrefixSpace: false, trimOffsets: true);
        ByteLevel("post_processor", addPrefixSpace: true, trimOffsets: false);
        ByteLevel("decoder", addPrefixSpace: true, trimOffsets: true);
        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        json.WriteNull("unk_token");
        json.WriteString("continuing_subword_prefix", "");
        json.WriteString("end_of_word_suffix", "");
        json.WriteBoolean("fuse_unk", false);
        json.WriteBoolean("byte_fallback", false);
        json.WriteStartObject("vocab");
        for (int id = 0; id < Tokens.Length; id++) json.WriteNumber(TokenText(id), id);
        json.WriteEndObject();
        json.WriteStartArray("merges");
        foreach (var (left, right) in Merges) json.WriteStringValue($"{TokenText(left)} {TokenText(right)}");
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>
    /// Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into <paramref name="folder"/> — what
    /// <c>AutoTokenizer.from_pretrained</c> and <see cref="ModelTokenizer.FromTokenizerJson"/> read.
    /// </summary>
    public void SaveTo(string folder, string bosToken, string eosToken, int modelMaxLength, string tokenizerClass = "PreTrainedTokenizerFast")
    {
        using (var file = File.Create(Path.Combine(folder, "tokenizer.json"))) WriteTokenizerJson(file);
        WriteJson(Path.Combine(folder, "tokenizer_config.json"), json =>
        {
            json.WriteString("tokenizer_class", tokenizerClass);
            json.WriteString("bos_token", bosToken);
            json.WriteString("eos_token", eosToken);
            json.WriteString("unk_token", eosToken);
            json.WriteString("pad_token", eosToken);
            json.WriteBoolean("add_prefix_space", false);
            json.WriteBoolean("clean_up_tokenization_spaces", false);
            json.WriteNumber("model_max_length", modelMaxLength);
        });
        WriteJson(Path.Combine(folder, "special_tokens_map.json"), json =>
        {
            json.WriteString("bos_token", bosToken);
            json.WriteString("eos_token", eosToken);
            json.WriteString("unk_token", eosToken);
            json.WriteString("pad_token", eosToken);
        });
    }

    static void WriteJson(string path, Action<Utf8JsonWriter> body)
    {
        using var file = File.Create(path);
        using var json = new Utf8JsonWriter(file, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        body(json);
        json.WriteEndObject();
    }
}

/// <summary>A tokenizer cannot be trained with these settings or this text; the message says what to change.</summary>
public sealed class TokenizerTrainingException(string message) : SharpLensException(message);
