using System.Text;
using System.Text.Json.Nodes;

namespace SharpLens.Tokenization;

/// <summary>
/// What a tokenizer.json must pass before Hugging Face's Rust tokenizers (Tokenizers.DotNet) may load it.
/// </summary>
/// <remarks>
/// The Rust library returns an error for most malformed files, but some it accepts and then panics on at the first
/// encode, and a Rust panic inside a native call ends the whole process (SIGABRT) where no C# <c>catch</c> can stop
/// it. Measured on tokenizers 0.22.2 with hand-made files, each a crash of <c>sharplens tokenize</c>:
/// <list type="bullet">
/// <item>a Split or Replace regex that backtracks catastrophically (<c>(a+)+$</c>): Oniguruma's retry limit is a panic;</item>
/// <item>a Precompiled normalizer whose charsmap is damaged: a 4 GB allocation, or an index out of bounds;</item>
/// <item>a TemplateProcessing post-processor naming a special token its <c>special_tokens</c> does not define;</item>
/// <item>Replace normalizers that each lengthen the text (<c>l</c> → <c>ll</c>, 20 times): memory exhausted.</item>
/// </list>
/// So each of those is checked here and refused by file and field. The checks are conservative where an exact one is
/// not possible: a regex with a quantified group that itself holds a quantifier or an alternation is refused (no
/// tokenizer SharpLens knows of has one: GPT-2's, Llama 3's, Qwen's and DeepSeek's patterns quantify only atoms and
/// classes).
/// </remarks>
internal static class NativeTokenizerGuard
{
    /// <summary>The most a chain of normalizers may lengthen a text (every real tokenizer's is 1, or 3 bytes for "▁").</summary>
    internal const double MaxGrowth = 16;

    public static void Check(string path, JsonObject root, int vocabSize)
    {
        foreach (var section in new[] { "normalizer", "pre_tokenizer", "post_processor", "decoder" })
            if (root[section] is JsonNode node) Walk(path, section, node, vocabSize, depth: 0);
        double growth = root["normalizer"] is JsonNode normalizer ? Growth(normalizer) : 1;
        if (growth > MaxGrowth)
            throw new TokenizerFilesException(path, $"{path}: the normalizers would make a text up to {(growth > 1e9 ? "more than 10⁹" : growth.ToString("0", System.Globalization.CultureInfo.InvariantCulture))} times longer " +
                $"(each Replace lengthens what it matches); no real tokenizer does more than {MaxGrowth:0}×. Is the file damaged?", "normalizer");
    }

    static void Walk(string path, string at, JsonNode node, int vocabSize, int depth)
    {
        if (depth > 64)
            throw new TokenizerFilesException(path, $"{path}: {at} is nested more than 64 levels deep; no tokenizer is.", at);
        switch (node)
        {
            case JsonArray array:
                for (int i = 0; i < array.Count; i++) if (array[i] is JsonNode item) Walk(path, $"{at}[{i}]", item, vocabSize, depth + 1);
                break;
            case JsonObject obj:
                string? type = obj["type"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : null;
                if (type is "Split" or "Replace" && obj["pattern"] is JsonObject pattern && pattern["Regex"] is JsonValue r && r.TryGetValue<string>(out var regex)
                    && CatastrophicPart(regex) is { } part)
                    throw new TokenizerFilesException(path, $"{path}: {at}.pattern.Regex \"{Shorten(regex)}\" repeats a group that itself repeats or alternates ({part}), " +
                        "which can backtrack for ever, and Hugging Face's tokenizers end the program when their regex engine gives up. Write the pattern without a repeated group of repeats.",
                        $"{at}.pattern.Regex");
                if (type == "Precompiled" && obj["precompiled_charsmap"] is JsonValue map && map.TryGetValue<string>(out var base64))
                    CheckCharsmap(path, $"{at}.precompiled_charsmap", base64);
                if (type == "TemplateProcessing") CheckTemplate(path, at, obj, vocabSize);
                foreach (var (key, value) in obj)
                    if (value is JsonObject or JsonArray) Walk(path, $"{at}.{key}", value, vocabSize, depth + 1);
                break;
        }
    }

    static string Shorten(string text) => text.Length > 60 ? text[..60] + "…" : text;

    // ---------------------------------------------------------------- regexes

    /// <summary>
    /// The first group that is repeated (by <c>*</c>, <c>+</c>, <c>{n,}</c> or <c>{n,m}</c> with m &gt; 1) and holds a
    /// repetition or an alternation of its own, e.g. <c>(a+)+</c>, <c>(a|aa)*</c>; null when there is none.
    /// </summary>
    internal static string? CatastrophicPart(string pattern)
    {
        // Per open group: where it starts, and whether its body repeats or alternates.
        var groups = new Stack<(int Start, bool Risky)>();
        bool lastWasGroup = false;
        int lastGroupStart = 0;
        bool lastGroupRisky = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            bool closedGroup = false;
            switch (c)
            {
                case '\\':
                    i++; // the escaped character (\p{L} etc. are atoms: the braces are skipped below as a quantifier would not follow)
                    if (i < pattern.Length && pattern[i] is 'p' or 'P' && i + 1 < pattern.Length && pattern[i + 1] == '{')
                        i = pattern.IndexOf('}', i) is int brace and >= 0 ? brace : pattern.Length;
                    break;
                case '[':
                    i = EndOfClass(pattern, i);
                    break;
                case '(':
                    groups.Push((i, false));
                    break;
                case ')':
                    if (groups.Count > 0)
                    {
                        var (start, risky) = groups.Pop();
                        (lastGroupStart, lastGroupRisky, closedGroup) = (start, risky, true);
                        // A risky group makes its enclosing group risky too.
                        if (risky && groups.Count > 0) groups.Push(Mark(groups.Pop()));
                    }
                    break;
                case '|':
                    if (groups.Count > 0) groups.Push(Mark(groups.Pop()));
                    break;
                case '*' or '+' or '?' or '{':
                    int end = i;
                    bool repeats = c is '*' or '+';
                    if (c == '{')
                    {
                        int close = pattern.IndexOf('}', i);
                        if (close < 0) break;
                        var bounds = pattern[(i + 1)..close].Split(',');
                        if (!int.TryParse(bounds[0], out _)) break; // a literal brace
                        repeats = bounds.Length == 2 && (bounds[1].Length == 0 || (int.TryParse(bounds[1], out int most) && most > 1))
                                  || bounds.Length == 1 && int.TryParse(bounds[0], out int exactly) && exactly > 1;
                        end = close;
                    }
                    if (repeats && lastWasGroup && lastGroupRisky)
                        return pattern[lastGroupStart..(end + 1)];
                    if (repeats && groups.Count > 0) groups.Push(Mark(groups.Pop()));
                    i = end;
                    if (i + 1 < pattern.Length && pattern[i + 1] is '?' or '+') i++; // lazy / possessive
                    lastWasGroup = false;
                    continue;
            }
            lastWasGroup = closedGroup;
        }
        return null;

        static (int, bool) Mark((int Start, bool Risky) group) => (group.Start, true);
    }

    static int EndOfClass(string pattern, int open)
    {
        int i = open + 1;
        if (i < pattern.Length && pattern[i] == '^') i++;
        if (i < pattern.Length && pattern[i] == ']') i++; // a leading ] is a literal
        int depth = 1;
        for (; i < pattern.Length; i++)
        {
            if (pattern[i] == '\\') { i++; continue; }
            if (pattern[i] == '[') depth++; // Oniguruma's nested classes and [:alpha:]
            else if (pattern[i] == ']' && --depth == 0) return i;
        }
        return pattern.Length;
    }

    // ---------------------------------------------------------------- lengthening normalizers

    /// <summary>How many times longer a normalizer can make a text, at most.</summary>
    internal static double Growth(JsonNode node)
    {
        if (node is not JsonObject obj) return 1;
        string? type = obj["type"] is JsonValue t && t.TryGetValue<string>(out var s) ? s : null;
        switch (type)
        {
            case "Sequence":
                double product = 1;
                if (obj["normalizers"] is JsonArray parts)
                    foreach (var part in parts) if (part is not null) product = Math.Min(1e12, product * Growth(part));
                return product;
            case "Replace":
                int content = obj["content"] is JsonValue c && c.TryGetValue<string>(out var text) ? Encoding.UTF8.GetByteCount(text) : 0;
                int matched = obj["pattern"] is JsonObject p && p["String"] is JsonValue str && str.TryGetValue<string>(out var literal)
                    ? Encoding.UTF8.GetByteCount(literal) : 1; // a regex may match a single byte
                // An empty match inserts the content between every two characters.
                return matched == 0 ? content + 1 : Math.Max(1, (double)content / matched);
            default:
                return 1;
        }
    }

    // ---------------------------------------------------------------- post-processor

    static void CheckTemplate(string path, string at, JsonObject template, int vocabSize)
    {
        var defined = template["special_tokens"] as JsonObject;
        foreach (var side in new[] { "single", "pair" })
        {
            if (template[side] is not JsonArray pieces) continue;
            for (int i = 0; i < pieces.Count; i++)
                if (pieces[i]?["SpecialToken"]?["id"] is JsonValue id && id.TryGetValue<string>(out var name) && defined?[name] is null)
                    throw new TokenizerFilesException(path, $"{path}: {at}.{side}[{i}] adds the special token \"{Shorten(name)}\", which {at}.special_tokens does not define. " +
                        "Define it there (with its ids and tokens) or remove it from the template.", $"{at}.{side}[{i}]");
        }
        if (defined is null) return;
        foreach (var (name, entry) in defined)
        {
            var ids = entry?["ids"] as JsonArray;
            var tokens = entry?["tokens"] as JsonArray;
            if (ids is null) continue;
            if (tokens is not null && tokens.Count != ids.Count)
                throw new TokenizerFilesException(path, $"{path}: {at}.special_tokens[\"{Shorten(name)}\"] has {ids.Count} ids but {tokens.Count} tokens; they go in pairs.", $"{at}.special_tokens");
            foreach (var value in ids)
                if (value is not JsonValue v || !v.TryGetValue<long>(out long n) || n < 0 || n >= vocabSize)
                    throw new TokenizerFilesException(path, $"{path}: {at}.special_tokens[\"{Shorten(name)}\"] has the id {value?.ToJsonString() ?? "null"}, " +
                        $"outside the vocabulary of {vocabSize} ids.", $"{at}.special_tokens");
        }
    }

    // ---------------------------------------------------------------- SentencePiece charsmaps

    /// <summary>
    /// A Precompiled normalizer's charsmap, as spm_precompiled reads it: a little-endian u32 byte length of a
    /// darts-clone double array, the array (u32 units), then the normalized strings, each ended by a NUL. Every unit a
    /// lookup can reach is followed here, and every index it would read must lie in the array, every value it
    /// yields in the strings (at the start of a UTF-8 character, with a NUL after it).
    /// </summary>
    internal static void CheckCharsmap(string path, string at, string base64)
    {
        TokenizerFilesException Bad(string why) => new(path, $"{path}: {at} is damaged: {why}. Re-export the tokenizer from its SentencePiece model.", at);
        byte[] bytes;
        try { bytes = Convert.FromBase64String(base64); }
        catch (FormatException) { throw Bad("it is not base64"); }
        if (bytes.Length < 4) throw Bad($"it is {bytes.Length} bytes long, shorter than its 4-byte header");
        long trieBytes = BitConverter.ToUInt32(bytes, 0);
        if (trieBytes % 4 != 0 || trieBytes > bytes.Length - 4)
            throw Bad($"its header gives a trie of {trieBytes} bytes, but {bytes.Length - 4} bytes follow{(trieBytes % 4 != 0 ? " (and a trie is whole 4-byte units)" : "")}");
        int units = (int)(trieBytes / 4);
        var array = new uint[units];
        Buffer.BlockCopy(bytes, 4, array, 0, (int)trieBytes);
        var strings = bytes.AsSpan(4 + (int)trieBytes);
        try { _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(strings); }
        catch (DecoderFallbackException) { throw Bad("its normalized strings are not valid UTF-8"); }
        if (units == 0) throw Bad("its trie is empty");

        static uint Offset(uint unit) => (unit >> 10) << (int)((unit & (1u << 9)) >> 6);
        static uint Label(uint unit) => unit & ((1u << 31) | 0xFF);
        static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

        var seen = new HashSet<uint>();
        var pending = new Stack<uint>();
        uint root = Offset(array[0]);
        pending.Push(root);
        while (pending.Count > 0)
        {
            uint node = pending.Pop();
            if (!seen.Add(node)) continue;
            for (uint c = 1; c < 256; c++)
            {
                uint child = node ^ c;
                if (child >= units) throw Bad($"a lookup of byte {c} reads unit {child} of a trie of {units}");
                uint unit = array[child];
                if (Label(unit) != c) continue;
                uint next = child ^ Offset(unit);
                if (HasLeaf(unit))
                {
                    if (next >= units) throw Bad($"a leaf is unit {next} of a trie of {units}");
                    uint value = array[next] & ((1u << 31) - 1);
                    if (value >= strings.Length || (strings[(int)value] & 0xC0) == 0x80 || strings[(int)value..].IndexOf((byte)0) < 0)
                        throw Bad($"a lookup yields the string at byte {value} of {strings.Length}, which does not start a NUL-ended UTF-8 string");
                }
                pending.Push(next);
            }
            if (seen.Count > units) throw Bad("its trie has more paths than units");
        }
    }
}
