using System.Globalization;
using System.Text;

namespace SharpLens.Tests.Encoder;

/// <summary>
/// Hugging Face's BertTokenizer(do_lower_case=True) transcribed step by step from its documented algorithm
/// (BasicTokenizer: clean text, space out CJK, NFC, split on whitespace, lowercase, strip accents, split off
/// punctuation; then greedy longest-match-first WordPiece with "##" continuations, [UNK] for a word with no split
/// or over 100 characters), over a plain dictionary: the test's own reference, sharing no code with SharpLens.
/// </summary>
static class HfBertTokenizerReference
{
    public static List<int> Encode(string text, IReadOnlyDictionary<string, int> vocab)
    {
        var ids = new List<int> { vocab["[CLS]"] };
        foreach (var token in BasicTokenize(text))
            ids.AddRange(WordPiece(token, vocab));
        ids.Add(vocab["[SEP]"]);
        return ids;
    }

    static IEnumerable<string> BasicTokenize(string text)
    {
        var clean = new StringBuilder();
        foreach (var r in text.EnumerateRunes())
        {
            var cat = Rune.GetUnicodeCategory(r);
            bool whitespace = r.Value is ' ' or '\t' or '\n' or '\r' || cat == UnicodeCategory.SpaceSeparator;
            bool control = !whitespace && cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
                or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
            if (r.Value == 0 || r.Value == 0xFFFD || control) continue;
            if (whitespace) clean.Append(' ');
            else if (r.Value is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0xF900 and <= 0xFAFF or >= 0x20000 and <= 0x2FA1F)
                clean.Append(' ').Append(r.ToString()).Append(' ');
            else clean.Append(r.ToString());
        }
        string nfc = clean.ToString().Normalize(NormalizationForm.FormC);
        foreach (var word in nfc.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var lowered = word.ToLowerInvariant().Normalize(NormalizationForm.FormD);
            var stripped = string.Concat(lowered.EnumerateRunes().Where(r => Rune.GetUnicodeCategory(r) != UnicodeCategory.NonSpacingMark).Select(r => r.ToString()));
            var current = new StringBuilder();
            foreach (char c in stripped)
            {
                bool punct = c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~'
                    || CharUnicodeInfo.GetUnicodeCategory(c).ToString().EndsWith("Punctuation", StringComparison.Ordinal);
                if (!punct) { current.Append(c); continue; }
                if (current.Length > 0) { yield return current.ToString(); current.Clear(); }
                yield return c.ToString();
            }
            if (current.Length > 0) yield return current.ToString();
        }
    }

    static IEnumerable<int> WordPiece(string word, IReadOnlyDictionary<string, int> vocab)
    {
        if (word.Length > 100) return [vocab["[UNK]"]];
        var pieces = new List<int>();
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length, found = -1;
            while (start < end)
            {
                string piece = (start > 0 ? "##" : "") + word[start..end];
                if (vocab.TryGetValue(piece, out found)) break;
                found = -1;
                end--;
            }
            if (found < 0) return [vocab["[UNK]"]];
            pieces.Add(found);
            start = end;
        }
        return pieces;
    }
}
