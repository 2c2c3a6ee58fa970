using System.Text;

namespace SharpLens.Tokenization.SentencePiece;

/// <summary>
/// SentencePiece's BPE encoding and decoding of a <c>tokenizer.model</c> (Llama 2, Mistral, Gemma), as the sentencepiece
/// library does them:
/// <list type="number">
/// <item>normalize: (with remove_extra_whitespaces) drop leading, trailing and repeated spaces; (with add_dummy_prefix)
/// put one space first; write spaces as ▁. User-defined symbols pass unchanged.</item>
/// <item>split into symbols: a user-defined symbol where one starts (longest first), else one Unicode character;</item>
/// <item>merge: repeatedly join the adjacent pair whose joined text is a piece with the highest score (ties: the
/// leftmost pair); user-defined symbols never merge;</item>
/// <item>emit each symbol's id; a symbol that is no piece becomes its UTF-8 bytes as &lt;0xXX&gt; pieces (byte_fallback),
/// or unk (consecutive unknowns fused into one).</item>
/// </list>
/// Decoding joins the pieces, turns ▁ into spaces, byte pieces into UTF-8 (invalid bytes become U+FFFD), and drops the
/// dummy prefix's space at the start. Only the identity normalizer is supported (Llama 2, Mistral and Gemma ship it).
/// </summary>
public sealed class SentencePieceBpe
{
    const char Space = '\u2581';
    readonly SentencePieceModelFile _model;
    readonly Dictionary<string, int> _mergeable = new(StringComparer.Ordinal); // normal and user-defined pieces
    readonly Dictionary<string, int> _all = new(StringComparer.Ordinal);
    readonly Dictionary<char, string[]> _userDefined = []; // by first character, longest first
    readonly int[] _byteIds = new int[256];

    public SentencePieceBpe(SentencePieceModelFile model)
    {
        _model = model;
        string file = model.Path;
        if (model.ModelType != 2)
            throw new TokenizerFilesException(file, $"{file}: trainer_spec.model_type is {model.ModelType} ({(model.ModelType == 1 ? "unigram" : "word/char")}); SharpLens reads SentencePiece BPE models (model_type 2: Llama 2, Mistral, Gemma). Use the model's tokenizer.json instead, if it has one.");
        if (model.HasCharsMap || model.NormalizerName is not ("identity" or ""))
            throw new TokenizerFilesException(file, $"{file}: normalizer_spec.name is \"{model.NormalizerName}\" with a precompiled character map; SharpLens applies only the identity normalizer (as Llama 2, Mistral and Gemma use). Use the model's tokenizer.json instead, if it has one.");
        Array.Fill(_byteIds, -1);
        for (int id = 0; id < model.Pieces.Count; id++)
        {
            var piece = model.Pieces[id];
            _all.TryAdd(piece.Text, id);
            if (piece.Type is PieceType.Normal or PieceType.UserDefined or PieceType.Unused) _mergeable.TryAdd(piece.Text, id);
            if (piece.Type == PieceType.Byte && piece.Text.Length == 6 && piece.Text.StartsWith("<0x", StringComparison.Ordinal) &&
                int.TryParse(piece.Text.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out int b))
                _byteIds[b] = id;
        }
        foreach (var group in model.Pieces.Where(p => p.Type == PieceType.UserDefined && p.Text.Length > 0).GroupBy(p => p.Text[0]))
            _userDefined[group.Key] = [.. group.Select(p => p.Text).OrderByDescending(t => t.Length)];
        if (model.UnkId < 0 || model.UnkId >= model.Pieces.Count)
            throw new TokenizerFilesException(file, $"{file}: trainer_spec.unk_id = {model.UnkId} is outside the {model.Pieces.Count} pieces.");
    }

    public int VocabSize => _model.Pieces.Count;
    public SentencePieceModelFile Model => _model;

    /// <summary>The piece text of an id (▁ for spaces, &lt;0x0A&gt; for a byte), as Hugging Face's convert_ids_to_tokens gives it.</summary>
    public string PieceOf(int id) => _model.Pieces[id].Text;

    /// <summary>The id of a piece's exact text, or null.</summary>
    public int? IdOf(string piece) => _all.TryGetValue(piece, out int id) ? id : null;

    /// <summary>Token ids of a text, with no BOS or EOS (sentencepiece's EncodeAsIds).</summary>
    public List<int> Encode(string text)
    {
        var ids = new List<int>();
        string normalized = Normalize(text);
        if (normalized.Length == 0) return ids;

        // Symbols as (start, length) spans of the normalized text, linked left and right.
        var symbols = new List<(int Start, int Length, bool Frozen)>();
        for (int at = 0; at < normalized.Length;)
        {
            int length = UserDefinedAt(normalized, at);
            bool frozen = length > 0;
            if (!frozen) length = char.IsHighSurrogate(normalized[at]) && at + 1 < normalized.Length && char.IsLowSurrogate(normalized[at + 1]) ? 2 : 1;
            symbols.Add((at, length, frozen));
            at += length;
        }
        int n = symbols.Count;
        var prev = new int[n];
        var next = new int[n];
        var lengths = new int[n];
        for (int i = 0; i < n; i++) (prev[i], next[i], lengths[i]) = (i - 1, i + 1 < n ? i + 1 : -1, symbols[i].Length);

        // Highest score first; among equal scores the leftmost pair (sentencepiece's SymbolPairComparator).
        var agenda = new PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)>(Comparer<(float Score, int Left)>.Create(
            (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left)));
        void MaybeAdd(int left, int right)
        {
            if (left == -1 || right == -1 || symbols[left].Frozen || symbols[right].Frozen) return;
            var piece = normalized.Substring(symbols[left].Start, lengths[left] + lengths[right]);
            if (_mergeable.TryGetValue(piece, out int id)) agenda.Enqueue((left, right, piece.Length), (_model.Pieces[id].Score, left));
        }
        for (int i = 1; i < n; i++) MaybeAdd(i - 1, i);
        while (agenda.TryDequeue(out var pair, out _))
        {
            var (left, right, size) = pair;
            // A pair whose symbols changed since it was queued is stale.
            if (lengths[left] == 0 || lengths[right] == 0 || lengths[left] + lengths[right] != size || next[left] != right) continue;
            lengths[left] += lengths[right];
            lengths[right] = 0;
            next[left] = next[right];
            if (next[right] != -1) prev[next[right]] = left;
            MaybeAdd(prev[left], left);
            MaybeAdd(left, next[left]);
        }

        bool previousUnknown = false;
        for (int i = 0; i != -1 && i < n; i = next[i])
        {
            var piece = normalized.Substring(symbols[i].Start, lengths[i]);
            if (_all.TryGetValue(piece, out int id) && _model.Pieces[id].Type != PieceType.Unknown)
            {
                ids.Add(id);
                previousUnknown = false;
                continue;
            }
            if (_model.ByteFallback)
            {
                foreach (byte b in Encoding.UTF8.GetBytes(piece))
                    ids.Add(_byteIds[b] >= 0 ? _byteIds[b] : _model.UnkId);
                previousUnknown = false;
                continue;
            }
            if (!previousUnknown) ids.Add(_model.UnkId); // consecutive unknown symbols become one unk
            previousUnknown = true;
        }
        return ids;
    }

    /// <summary>The longest user-defined symbol starting at <paramref name="at"/>, or 0.</summary>
    int UserDefinedAt(string text, int at)
    {
        if (!_userDefined.TryGetValue(text[at], out var candidates)) return 0;
        foreach (var symbol in candidates)
            if (string.CompareOrdinal(text, at, symbol, 0, symbol.Length) == 0) return symbol.Length;
        return 0;
    }

    /// <summary>sentencepiece's normalizer with the identity rule: whitespace handling, dummy prefix, ▁ for spaces.</summary>
    public string Normalize(string text)
    {
        var m = _model;
        var output = new StringBuilder(text.Length + 1);
        int at = 0;
        if (m.RemoveExtraWhitespaces) while (at < text.Length && text[at] == ' ') at++;
        if (at >= text.Length) return "";
        char space = m.EscapeWhitespaces ? Space : ' ';
        if (m.AddDummyPrefix && !m.TreatWhitespaceAsSuffix) output.Append(space);
        bool previousSpace = m.AddDummyPrefix;
        while (at < text.Length)
        {
            int user = UserDefinedAt(text, at);
            if (user > 0)
            {
                output.Append(text, at, user);
                at += user;
                previousSpace = false;
                continue;
            }
            char c = text[at++];
            if (c == ' ')
            {
                if (m.RemoveExtraWhitespaces && previousSpace) continue;
                output.Append(space);
                previousSpace = true;
            }
            else
            {
                output.Append(c);
                previousSpace = false;
            }
        }
        if (m.RemoveExtraWhitespaces) while (output.Length > 0 && output[^1] == space) output.Length--;
        if (m.AddDummyPrefix && m.TreatWhitespaceAsSuffix && output.Length > 0) output.Append(space);
        return output.ToString();
    }

    /// <summary>
    /// The text of ids as sentencepiece decodes them, except that control pieces (&lt;s&gt;, &lt;/s&gt;) show as their text,
    /// as Hugging Face's decode does without skip_special_tokens.
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool first = true;
        void FlushBytes()
        {
            if (bytes.Count == 0) return;
            text.Append(DecodeBytes(bytes));
            bytes.Clear();
        }
        foreach (int id in ids)
        {
            var piece = _model.Pieces[id];
            if (piece.Type == PieceType.Byte && _byteIds.AsSpan().IndexOf(id) is int b and >= 0)
            {
                bytes.Add((byte)b);
                continue;
            }
            FlushBytes();
            string surface = piece.Type switch
            {
                PieceType.Control => piece.Text,
                PieceType.Unknown => " \u2047 ",
                _ => piece.Text.Replace(Space, ' '),
            };
            // The dummy prefix's space is not part of the text.
            if (first && _model.AddDummyPrefix && piece.Type is PieceType.Normal && surface.StartsWith(' ')) surface = surface[1..];
            if (piece.Type != PieceType.Control) first = false;
            text.Append(surface);
        }
        FlushBytes();
        return text.ToString();
    }

    /// <summary>UTF-8 bytes as text, each byte of an invalid sequence replaced by U+FFFD (sentencepiece's rule).</summary>
    static string DecodeBytes(List<byte> bytes)
    {
        var decoder = Encoding.GetEncoding("utf-8", EncoderFallback.ExceptionFallback, DecoderFallback.ReplacementFallback);
        return decoder.GetString([.. bytes]);
    }
}
