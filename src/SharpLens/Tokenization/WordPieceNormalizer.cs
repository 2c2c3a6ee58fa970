using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace SharpLens.Tokenization;

/// <summary>
/// Hugging Face's uncased BERT text clean-up (BasicTokenizer), as a Microsoft.ML.Tokenizers normalizer:
/// drop NUL, U+FFFD and control characters (Unicode C*, except tab / newline / return); turn every whitespace
/// (tab, newline, return, Unicode Zs) into a space; put spaces around CJK ideographs; lowercase; decompose
/// (NFD) and drop non-spacing marks, so "café" becomes "cafe".
/// </summary>
/// <remarks>Works on code points, not UTF-16 units, so a character outside the BMP is one character, not two controls.</remarks>
public sealed class WordPieceNormalizer : Normalizer
{
    public static readonly WordPieceNormalizer Uncased = new();

    /// <summary>False where .NET runs without ICU (InvariantGlobalization): then NFD leaves "é" whole.</summary>
    static readonly bool CanDecompose = Decomposes();

    static bool Decomposes()
    {
        try { return "\u00E9".Normalize(NormalizationForm.FormD).Length == 2; }
        catch (PlatformNotSupportedException) { return false; }
    }

    public override string Normalize(string original) => Normalize(original.AsSpan());

    public override string Normalize(ReadOnlySpan<char> original)
    {
        var cleaned = new StringBuilder(original.Length + 8);
        foreach (var rune in original.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) cleaned.Append(' ');
            else if (IsCjk(cp)) cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else cleaned.Append(rune.ToString());
        }
        string lowered = cleaned.ToString().ToLowerInvariant();
        if (Ascii.IsValid(lowered)) return lowered;
        if (!CanDecompose)
            throw new PlatformNotSupportedException(
                "Unicode normalisation is unavailable (the app runs with InvariantGlobalization), so accents cannot be stripped as BERT's " +
                "tokenizer does and 'café' would not become 'cafe'. Set <InvariantGlobalization>false</InvariantGlobalization> and install ICU.");
        var stripped = new StringBuilder(lowered.Length);
        foreach (var rune in lowered.Normalize(NormalizationForm.FormD).EnumerateRunes())
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark) stripped.Append(rune.ToString());
        return stripped.ToString();
    }

    static bool IsWhitespace(Rune r) => r.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(r) == UnicodeCategory.SpaceSeparator;

    static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
            or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate;
    }

    /// <summary>The CJK ideograph blocks BERT treats as one token each (not Hangul, Hiragana or Katakana).</summary>
    static bool IsCjk(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF or >= 0x3400 and <= 0x4DBF or >= 0x20000 and <= 0x2A6DF or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F or >= 0x2B820 and <= 0x2CEAF or >= 0xF900 and <= 0xFAFF or >= 0x2F800 and <= 0x2FA1F;
}
