using System.Text;

namespace SharpLens.Tokenization;

/// <summary>
/// The tokenizer of karpathy/llama2.c, read from and written to its <c>tokenizer.bin</c>: an int32 max piece length,
/// then per token a float32 merge score, an int32 byte length and the piece's bytes. Encoding is llama2.c's:
/// a leading space piece, one piece per UTF-8 character (or its bytes as &lt;0xXX&gt; byte tokens, id byte + 3 when the
/// character is not in the vocabulary), then repeatedly merge the adjacent pair whose concatenation is the
/// highest-scoring piece. Ids 0, 1, 2 are &lt;unk&gt;, BOS and EOS.
/// </summary>
public sealed class Llama2cTokenizer
{
    public const int Bos = 1, Eos = 2, ByteOffset = 3;

    readonly byte[][] _pieces;
    readonly float[] _scores;
    readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal); // keyed by the piece's bytes as Latin-1 chars

    public Llama2cTokenizer(IReadOnlyList<byte[]> pieces, IReadOnlyList<float> scores, int? maxTokenLength = null)
    {
        if (pieces.Count != scores.Count) throw new ArgumentException($"{pieces.Count} pieces but {scores.Count} scores.", nameof(scores));
        _pieces = [.. pieces.Select(p => (byte[])p.Clone())];
        _scores = [.. scores];
        for (int id = 0; id < _pieces.Length; id++) _ids.TryAdd(Key(_pieces[id]), id);
        MaxTokenLength = maxTokenLength ?? _pieces.Max(p => p.Length);
    }

    public int VocabSize => _pieces.Length;
    public int MaxTokenLength { get; }
    public ReadOnlySpan<byte> Piece(int id) => _pieces[id];
    public float Score(int id) => _scores[id];

    /// <summary>Reads <paramref name="vocabSize"/> pieces (the model's vocab_size: the file does not store it).</summary>
    public static Llama2cTokenizer Read(string path, int vocabSize)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No llama2.c tokenizer at '{path}'.", path);
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream);
        // Every token takes at least 8 bytes (score and length): a vocab_size the file cannot hold is refused before anything is reserved.
        if (vocabSize < 0 || 4 + 8L * vocabSize > stream.Length)
            throw new SharpLensFileException(path, "vocab_size", $"{path} is {stream.Length} bytes, too short for vocab_size {vocabSize} (at least {4 + 8L * Math.Max(0, vocabSize)} bytes); is vocab_size right for this tokenizer?");
        var pieces = new List<byte[]>(vocabSize);
        var scores = new List<float>(vocabSize);
        try
        {
            int maxLength = reader.ReadInt32();
            if (maxLength < 0 || maxLength > stream.Length)
                throw new SharpLensFileException(path, "max_token_length", $"{path}: max_token_length is {maxLength}, which no piece of this {stream.Length}-byte file can have; the file is not a llama2.c tokenizer.");
            for (int id = 0; id < vocabSize; id++)
            {
                scores.Add(reader.ReadSingle());
                int length = reader.ReadInt32();
                if (length < 0 || length > maxLength)
                    throw new SharpLensFileException(path, "vocab_size", $"{path}: token {id} claims {length} bytes, outside 0…{maxLength} (max_token_length); the file is not a llama2.c tokenizer or does not match this vocab_size.");
                pieces.Add(reader.ReadBytes(length));
                if (pieces[^1].Length != length) throw new EndOfStreamException();
            }
            return new Llama2cTokenizer(pieces, scores, maxLength);
        }
        catch (EndOfStreamException)
        {
            throw new SharpLensFileException(path, "vocab_size", $"{path} ends after {pieces.Count} of {vocabSize} tokens; is vocab_size {vocabSize} right for this tokenizer?");
        }
    }

    public void Write(string path) => IO.AtomicFile.Write(path, stream =>
    {
        using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        writer.Write(MaxTokenLength);
        for (int id = 0; id < _pieces.Length; id++)
        {
            writer.Write(_scores[id]);
            writer.Write(_pieces[id].Length);
            writer.Write(_pieces[id]);
        }
    });

    public List<int> Encode(string text, bool bos = true, bool eos = false)
    {
        var ids = new List<int>();
        if (bos) ids.Add(Bos);
        if (text.Length > 0 && _ids.TryGetValue(" ", out int space)) ids.Add(space);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            int n = rune.EncodeToUtf8(utf8);
            if (_ids.TryGetValue(Key(utf8[..n]), out int id)) ids.Add(id);
            // Byte fallback: llama2.c's byte pieces sit at id byte + 3; a vocabulary too small to hold them gives <unk> (0).
            else foreach (byte b in utf8[..n]) ids.Add(b + ByteOffset < _pieces.Length ? b + ByteOffset : 0);
        }
        int first = bos ? 1 : 0;
        while (true)
        {
            (float score, int id, int at) best = (float.NegativeInfinity, -1, -1);
            for (int i = first; i + 1 < ids.Count; i++)
                if (_ids.TryGetValue(Key([.. _pieces[ids[i]], .. _pieces[ids[i + 1]]]), out int merged) && _scores[merged] > best.score)
                    best = (_scores[merged], merged, i);
            if (best.at < 0) break;
            ids[best.at] = best.id;
            ids.RemoveAt(best.at + 1);
        }
        if (eos) ids.Add(Eos);
        return ids;
    }

    /// <summary>Text of a token sequence: byte tokens become bytes, the space after BOS is dropped, BOS/EOS print nothing.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        var bytes = new List<byte>();
        int previous = -1;
        foreach (int id in ids)
        {
            if (id < 0 || id >= _pieces.Length) throw new ArgumentOutOfRangeException(nameof(ids), $"Token id {id} is outside the vocabulary (0…{_pieces.Length - 1}).");
            if (id is Bos or Eos) { previous = id; continue; }
            ReadOnlySpan<byte> piece = _pieces[id];
            if (previous == Bos && piece.Length > 0 && piece[0] == (byte)' ') piece = piece[1..];
            if (ByteToken(piece) is byte raw) bytes.Add(raw); else bytes.AddRange(piece.ToArray());
            previous = id;
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    static byte? ByteToken(ReadOnlySpan<byte> piece) =>
        piece.Length == 6 && piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && piece[5] == '>' &&
        byte.TryParse(Encoding.ASCII.GetString(piece[3..5]), System.Globalization.NumberStyles.HexNumber, null, out byte b) ? b : null;

    static string Key(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
}
