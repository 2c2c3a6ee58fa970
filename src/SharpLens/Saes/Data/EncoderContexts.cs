using SharpLens.Tokenization;

namespace SharpLens.Saes.Data;

/// <summary>
/// Fixed-length rows for a BERT encoder: consecutive texts (sentences, paragraphs) are packed whole into
/// <c>[CLS] text₁ text₂ … [SEP] [PAD] …</c> of exactly <c>contextSize</c> ids, so a row reads as running text, as the
/// encoder saw text in training, and little of it is padding. A text that does not fit in an empty row is cut into
/// pieces that do. Unlike <see cref="Contexts"/> for decoders, nothing separates the texts inside a row: [SEP] would
/// tell the encoder a new segment starts, which BERT-style sentence encoders do not see mid-paragraph.
/// </summary>
public static class EncoderContexts
{
    public static IEnumerable<long[]> Pack(IEnumerable<string> texts, BertWordPieceTokenizer tokenizer, int contextSize)
    {
        int body = contextSize - 2;
        if (body < 1) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "contextSize must leave room for [CLS], [SEP] and at least one token.");
        var pending = new List<int>(body);
        foreach (string text in texts)
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false);
            if (ids.Count == 0) continue;
            if (pending.Count + ids.Count > body && pending.Count > 0)
            {
                yield return Row(pending, tokenizer, contextSize);
                pending.Clear();
            }
            for (int start = 0; start < ids.Count; start += body)
            {
                int take = Math.Min(body, ids.Count - start);
                pending.AddRange(ids.Skip(start).Take(take));
                if (pending.Count < body) continue;
                yield return Row(pending, tokenizer, contextSize);
                pending.Clear();
            }
        }
        if (pending.Count > 0) yield return Row(pending, tokenizer, contextSize);
    }

    static long[] Row(List<int> ids, BertWordPieceTokenizer tokenizer, int contextSize)
    {
        var row = new long[contextSize];
        Array.Fill(row, tokenizer.PadTokenId);
        row[0] = tokenizer.ClsTokenId;
        for (int i = 0; i < ids.Count; i++) row[i + 1] = ids[i];
        row[ids.Count + 1] = tokenizer.SepTokenId;
        return row;
    }
}
