using System.Text;

namespace SharpLens.Tokenization.SentencePiece;

/// <summary>The kind of a piece in a SentencePiece model (sentencepiece_model.proto's SentencePiece.Type).</summary>
public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

/// <summary>One vocabulary entry: its text (spaces written ▁), score (BPE merge priority) and kind.</summary>
public readonly record struct Piece(string Text, float Score, PieceType Type);

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> read from its protobuf (sentencepiece_model.proto's ModelProto) with a small
/// wire-format reader: the pieces (field 1), the trainer spec's model type, byte fallback and special ids (field 2),
/// and the normalizer spec (field 3). Only what encoding and decoding need is kept; anything that is not a well-formed
/// ModelProto with pieces is refused naming the file.
/// </summary>
public sealed class SentencePieceModelFile
{
    public required string Path { get; init; }
    public required IReadOnlyList<Piece> Pieces { get; init; }
    /// <summary>trainer_spec.model_type: 1 unigram, 2 BPE, 3 word, 4 char.</summary>
    public int ModelType { get; init; } = 1;
    public bool ByteFallback { get; init; }
    public int UnkId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public bool TreatWhitespaceAsSuffix { get; init; }
    /// <summary>normalizer_spec.name ("identity", "nmt_nfkc", ...) and whether it carries a precompiled character map.</summary>
    public string NormalizerName { get; init; } = "";
    public bool HasCharsMap { get; init; }
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    /// <summary>Reads and checks a tokenizer.model; the largest accepted file is 64 MiB (Gemma 3's is 4.5 MiB).</summary>
    public static SentencePieceModelFile Read(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new TokenizerFilesException(path, $"No tokenizer.model at '{path}'.");
        long length = new FileInfo(path).Length;
        if (length > 64L << 20) throw new TokenizerFilesException(path, $"'{path}' is {length / (1 << 20)} MiB, larger than any SentencePiece model (64 MiB accepted); is it the right file?");
        var bytes = File.ReadAllBytes(path);
        try { return Parse(bytes, path); }
        catch (FormatException e)
        {
            throw new TokenizerFilesException(path, $"'{path}' is not a SentencePiece model (a ModelProto protobuf): {e.Message} A tokenizer.model comes from the model's repository as it is; re-download it.");
        }
    }

    static SentencePieceModelFile Parse(byte[] data, string path)
    {
        var pieces = new List<Piece>();
        var trainer = new Dictionary<int, ulong>();
        var normalizer = new Dictionary<int, ulong>();
        string normalizerName = "";
        bool charsMap = false;
        var reader = new ProtoReader(data, 0, data.Length);
        while (reader.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2): pieces.Add(ParsePiece(reader.Bytes())); break;
                case (2, 2):
                    var (ts, tsLength) = reader.Span();
                    var t = new ProtoReader(data, ts, ts + tsLength);
                    while (t.Next(out int f, out int w))
                        if (w == 0) trainer[f] = t.Varint(); else t.Skip(w);
                    break;
                case (3, 2):
                    var (ns, nsLength) = reader.Span();
                    var n = new ProtoReader(data, ns, ns + nsLength);
                    while (n.Next(out int f, out int w))
                    {
                        if (f == 1 && w == 2) normalizerName = Encoding.UTF8.GetString(n.Bytes());
                        else if (f == 2 && w == 2) charsMap = n.Bytes().Length > 0;
                        else if (w == 0) normalizer[f] = n.Varint();
                        else n.Skip(w);
                    }
                    break;
                default: reader.Skip(wire); break;
            }
        }
        if (pieces.Count == 0) throw new FormatException("it holds no pieces (field 1).");
        int Id(int field, int fallback) => trainer.TryGetValue(field, out var v) ? (int)(long)v : fallback;
        bool Flag(Dictionary<int, ulong> spec, int field, bool fallback) => spec.TryGetValue(field, out var v) ? v != 0 : fallback;
        return new SentencePieceModelFile
        {
            Path = path,
            Pieces = pieces,
            ModelType = Id(3, 1),
            ByteFallback = Flag(trainer, 35, false),
            TreatWhitespaceAsSuffix = Flag(trainer, 24, false),
            UnkId = Id(40, 0), BosId = Id(41, 1), EosId = Id(42, 2), PadId = Id(43, -1),
            NormalizerName = normalizerName,
            HasCharsMap = charsMap,
            AddDummyPrefix = Flag(normalizer, 3, true),
            RemoveExtraWhitespaces = Flag(normalizer, 4, true),
            EscapeWhitespaces = Flag(normalizer, 5, true),
        };
    }

    static Piece ParsePiece(byte[] data)
    {
        string? text = null;
        float score = 0;
        int type = 1;
        var r = new ProtoReader(data, 0, data.Length);
        while (r.Next(out int f, out int w))
        {
            if (f == 1 && w == 2) text = Encoding.UTF8.GetString(r.Bytes());
            else if (f == 2 && w == 5) score = r.Float();
            else if (f == 3 && w == 0) type = (int)r.Varint();
            else r.Skip(w);
        }
        if (text is null) throw new FormatException("a piece has no text.");
        if (type is < 1 or > 6) throw new FormatException($"piece '{text}' has unknown type {type}.");
        return new Piece(text, score, (PieceType)type);
    }

    /// <summary>Protocol-buffer wire format, just enough to walk a message: varints, fixed32/64 and length-delimited fields.</summary>
    sealed class ProtoReader(byte[] data, int start, int end)
    {
        int _at = start;

        public bool Next(out int field, out int wire)
        {
            (field, wire) = (0, 0);
            if (_at >= end) return false;
            ulong key = Varint();
            (field, wire) = ((int)(key >> 3), (int)(key & 7));
            if (field <= 0) throw new FormatException($"field number {field} at byte {_at}.");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_at >= end) throw new FormatException("a varint runs past the end.");
                byte b = data[_at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new FormatException("a varint is longer than 10 bytes.");
        }

        public (int Start, int Length) Span()
        {
            ulong length = Varint();
            if (length > (ulong)(end - _at)) throw new FormatException($"a field of {length} bytes runs past the end.");
            var span = (_at, (int)length);
            _at += (int)length;
            return span;
        }

        public byte[] Bytes()
        {
            var (s, n) = Span();
            return data[s..(s + n)];
        }

        public float Float()
        {
            if (end - _at < 4) throw new FormatException("a float runs past the end.");
            float f = BitConverter.ToSingle(data, _at);
            _at += 4;
            return f;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: if ((_at += 8) > end) throw new FormatException("a fixed64 runs past the end."); break;
                case 2: Span(); break;
                case 5: if ((_at += 4) > end) throw new FormatException("a fixed32 runs past the end."); break;
                default: throw new FormatException($"wire type {wire} is not one a ModelProto uses.");
            }
        }
    }
}
