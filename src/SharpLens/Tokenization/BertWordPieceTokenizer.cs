using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tokenization;

/// <summary>
/// An uncased BERT WordPiece tokenizer that gives the ids Hugging Face's <c>BertTokenizer(do_lower_case=True)</c>
/// gives: Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> with HF's clean-up (<see cref="WordPieceNormalizer"/>)
/// and word split (<see cref="WordPiecePreTokenizer"/>) in place of its defaults, which differ on accents and symbols.
/// Sequences are <c>[CLS] tokens [SEP]</c>, batches padded on the right with <c>[PAD]</c>.
/// </summary>
public sealed partial class BertWordPieceTokenizer
{
    readonly BertTokenizer _inner;
    readonly Dictionary<string, int> _special;

    BertWordPieceTokenizer(BertTokenizer inner, string source)
    {
        _inner = inner;
        Source = source;
        ClsTokenId = inner.ClassificationTokenId;
        SepTokenId = inner.SeparatorTokenId;
        PadTokenId = inner.PaddingTokenId;
        MaskTokenId = inner.MaskingTokenId;
        UnknownTokenId = inner.UnknownTokenId;
        _special = new(StringComparer.Ordinal)
        {
            ["[CLS]"] = ClsTokenId, ["[SEP]"] = SepTokenId, ["[PAD]"] = PadTokenId, ["[MASK]"] = MaskTokenId, ["[UNK]"] = UnknownTokenId,
        };
    }

    /// <summary>Where the vocabulary came from, for messages.</summary>
    public string Source { get; }
    public int ClsTokenId { get; }
    public int SepTokenId { get; }
    public int PadTokenId { get; }
    public int MaskTokenId { get; }
    public int UnknownTokenId { get; }

    /// <summary>Reads a <c>vocab.txt</c> (one token per line, the line number is its id; CRLF or LF).</summary>
    public static BertWordPieceTokenizer FromVocab(Stream vocab, string source)
    {
        var options = new BertOptions
        {
            LowerCaseBeforeTokenization = true,
            ApplyBasicTokenization = true,
            Normalizer = WordPieceNormalizer.Uncased,
            PreTokenizer = WordPiecePreTokenizer.Instance,
        };
        // The lines are kept as the id → piece table (BertTokenizer decodes "##ing" as "ing", losing the word boundary).
        using var reader = new StreamReader(vocab, leaveOpen: true);
        string[] pieces = reader.ReadToEnd().Split('\n').Select(line => line.TrimEnd('\r')).ToArray();
        if (pieces.Length > 0 && pieces[^1].Length == 0) pieces = pieces[..^1];
        using var copy = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(string.Join("\n", pieces) + "\n"));
        try { return new BertWordPieceTokenizer(BertTokenizer.Create(copy, options), source) { _pieces = pieces }; }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException)
        {
            throw new TokenizerFilesException(source, $"{source} is not a usable WordPiece vocab.txt: {e.Message}");
        }
    }

    public static BertWordPieceTokenizer FromVocabFile(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No vocab.txt at '{path}'.", path);
        using var stream = File.OpenRead(path);
        return FromVocab(stream, path);
    }

    /// <summary>
    /// Token ids of one text, with <c>[CLS]</c> … <c>[SEP]</c> around them unless <paramref name="addSpecialTokens"/> is false.
    /// Special tokens written in the text (<c>[MASK]</c>, <c>[SEP]</c>, …) stay whole, as in Hugging Face, rather than
    /// being lowercased and split into "[", "mask", "]".
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>();
        if (addSpecialTokens) ids.Add(ClsTokenId);
        foreach (var piece in SpecialToken().Split(text))
        {
            if (piece.Length == 0) continue;
            if (_special.TryGetValue(piece, out int id)) ids.Add(id);
            else ids.AddRange(_inner.EncodeToIds(piece, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true));
        }
        if (addSpecialTokens) ids.Add(SepTokenId);
        return ids;
    }

    /// <summary>Splits text around BERT's special tokens, keeping them as pieces of their own.</summary>
    [GeneratedRegex(@"(\[CLS\]|\[SEP\]|\[PAD\]|\[MASK\]|\[UNK\])")]
    private static partial Regex SpecialToken();

    /// <summary>The token strings of one text (sub-words start with "##"), for display.</summary>
    public IReadOnlyList<string> ToStrTokens(string text, bool addSpecialTokens = true) =>
        [.. Encode(text, addSpecialTokens).Select(Piece)];

    string[] _pieces = [];

    /// <summary>The vocabulary entry of an id as vocab.txt spells it: "##ing" for a word's continuation, "[CLS]" for a special token.</summary>
    public string Piece(int id) => id >= 0 && id < _pieces.Length ? _pieces[id]
        : throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is outside the vocabulary of {Source} (0…{_pieces.Length - 1}).");

    public string Decode(IEnumerable<int> ids) => _inner.Decode(ids) ?? "";

    /// <summary>
    /// Tokenizes a batch, padded on the right to the longest: tokens, attention mask (1 real, 0 padding) and token
    /// type ids (all 0: one segment), each [batch, pos] Int64. Texts longer than <paramref name="maxLength"/> tokens
    /// (special tokens included) are cut to it, keeping the final <c>[SEP]</c>, as HF's truncation does.
    /// </summary>
    public (Tensor Tokens, Tensor AttentionMask, Tensor TokenTypeIds) ToTokens(IReadOnlyList<string> texts, int maxLength = 512)
    {
        if (texts.Count == 0) throw new ArgumentException("Give at least one text.", nameof(texts));
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "maxLength must leave room for [CLS] and [SEP].");
        var rows = texts.Select(t =>
        {
            var ids = Encode(t).ToList();
            if (ids.Count > maxLength) ids = [.. ids.Take(maxLength - 1), SepTokenId];
            return ids;
        }).ToList();
        int width = rows.Max(r => r.Count);
        var tokens = new long[texts.Count, width];
        var mask = new long[texts.Count, width];
        for (int b = 0; b < rows.Count; b++)
            for (int p = 0; p < width; p++)
            {
                bool real = p < rows[b].Count;
                tokens[b, p] = real ? rows[b][p] : PadTokenId;
                mask[b, p] = real ? 1 : 0;
            }
        return (torch.tensor(tokens), torch.tensor(mask), torch.zeros(texts.Count, width, ScalarType.Int64));
    }
}
