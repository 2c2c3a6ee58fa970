using System.Globalization;
using Microsoft.ML.Tokenizers;

namespace SharpLens.Tokenization;

/// <summary>
/// Hugging Face's BERT word split: words are separated by whitespace, and every punctuation character is a word
/// of its own. Punctuation is every ASCII symbol that is not a letter, digit or space (so <c>$</c>, <c>_</c>,
/// <c>^</c>, <c>`</c> count) and every Unicode P* character.
/// </summary>
public sealed class WordPiecePreTokenizer : PreTokenizer
{
    public static readonly WordPiecePreTokenizer Instance = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) => Split(text);

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) => Split(text.ToString());

    static List<(int Offset, int Length)> Split(string text)
    {
        var words = new List<(int, int)>();
        int start = -1;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            bool space = char.IsWhiteSpace(c), punct = !space && IsPunctuation(c);
            if ((space || punct) && start >= 0) { words.Add((start, i - start)); start = -1; }
            if (punct) words.Add((i, 1));
            else if (!space && start < 0) start = i;
        }
        if (start >= 0) words.Add((start, text.Length - start));
        return words;
    }

    public static bool IsPunctuation(char c) =>
        c is >= '!' and <= '/' or >= ':' and <= '@' or >= '[' and <= '`' or >= '{' and <= '~' ||
        char.GetUnicodeCategory(c) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
}
