using System.Text;
using SharpLens.Tokenization;

namespace SharpLens.Tests.Tokenization;

/// <summary>llama2.c's tokenizer.bin and its encoding: the leading space piece, byte fallback, best-score merges.</summary>
public class Llama2cTokenizerTests
{
    // A tokenizer.bin in llama2.c's layout: <unk>, <s>, </s>, the 256 byte tokens <0x00>…<0xFF>, then pieces with merge scores.
    static Llama2cTokenizer Small()
    {
        var pieces = new List<byte[]> { "<unk>"u8.ToArray(), "<s>"u8.ToArray(), "</s>"u8.ToArray() };
        var scores = new List<float> { 0, 0, 0 };
        for (int b = 0; b < 256; b++) { pieces.Add(Encoding.ASCII.GetBytes($"<0x{b:X2}>")); scores.Add(0); }
        foreach (var (piece, score) in new (string, float)[]
        {
            (" ", -1), ("a", -2), ("b", -3), ("c", -4), ("é", -5), ("ab", -6), (" a", -7), (" ab", -8), ("abc", -9), ("bc", -1.5f),
        })
        {
            pieces.Add(Encoding.UTF8.GetBytes(piece));
            scores.Add(score);
        }
        return new Llama2cTokenizer(pieces, scores);
    }

    static int Id(Llama2cTokenizer t, string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        for (int id = 0; id < t.VocabSize; id++) if (t.Piece(id).SequenceEqual(bytes)) return id;
        throw new KeyNotFoundException(piece);
    }

    [Fact]
    public void Merges_follow_the_highest_score_first()
    {
        var t = Small();
        // " abc" → [" ", a, b, c]; best pair first: "bc" (−1.5) beats " a" (−7) and "ab" (−6); then " a"+"bc" is not a
        // piece, " a" (−7) is the only merge left; " a"+"bc" still absent, so the result is [" a", "bc"].
        Assert.Equal([Llama2cTokenizer.Bos, Id(t, " a"), Id(t, "bc")], t.Encode("abc"));
    }

    [Fact]
    public void Characters_missing_from_the_vocabulary_fall_back_to_their_utf8_bytes()
    {
        var t = Small();
        // "ü" is not a piece: its two UTF-8 bytes C3 BC become <0xC3> <0xBC> (id byte + 3); "é" is a piece.
        var ids = t.Encode("üé", bos: false);
        Assert.Equal([Id(t, " "), 0xC3 + 3, 0xBC + 3, Id(t, "é")], ids);
        Assert.Equal(" üé", t.Decode(ids));
    }

    [Fact]
    public void Decoding_drops_the_space_after_bos_and_prints_nothing_for_bos_and_eos()
    {
        var t = Small();
        var ids = t.Encode("ab c", bos: true, eos: true);
        Assert.Equal(Llama2cTokenizer.Eos, ids[^1]);
        Assert.Equal("ab c", t.Decode(ids));
    }

    [Fact]
    public void Tokenizer_bin_round_trips_byte_for_byte()
    {
        var t = Small();
        string path = Path.Combine(Path.GetTempPath(), $"tok-{Guid.NewGuid():N}.bin");
        try
        {
            t.Write(path);
            var back = Llama2cTokenizer.Read(path, t.VocabSize);
            Assert.Equal(t.MaxTokenLength, back.MaxTokenLength);
            for (int id = 0; id < t.VocabSize; id++)
            {
                Assert.True(t.Piece(id).SequenceEqual(back.Piece(id)));
                Assert.Equal(t.Score(id), back.Score(id));
            }
            string copy = path + ".copy";
            back.Write(copy);
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(copy));
            File.Delete(copy);
            // Layout: int32 max length, then per token float32 score, int32 length, bytes.
            var bytes = File.ReadAllBytes(path);
            Assert.Equal(t.MaxTokenLength, BitConverter.ToInt32(bytes, 0));
            Assert.Equal(5, BitConverter.ToInt32(bytes, 8)); // "<unk>" has 5 bytes
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Reading_with_a_vocab_size_larger_than_the_file_names_the_mismatch()
    {
        var t = Small();
        string path = Path.Combine(Path.GetTempPath(), $"tok-{Guid.NewGuid():N}.bin");
        try
        {
            t.Write(path);
            var e = Assert.Throws<SharpLensFileException>(() => Llama2cTokenizer.Read(path, t.VocabSize + 5));
            Assert.Contains(path, e.Message);
            Assert.Equal(path, e.FilePath);
            Assert.Contains("vocab_size", e.Message);
        }
        finally { File.Delete(path); }
    }
}
