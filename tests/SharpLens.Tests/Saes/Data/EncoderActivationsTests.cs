using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes.Data;

public class EncoderActivationsTests
{
    const int Cls = 1, Sep = 2, Pad = 0;

    static HookedEncoder TinyEncoder() => new(new ModelConfig
    {
        DModel = 16, NLayers = 2, NHeads = 4, DHead = 4, DMlp = 32, DVocab = 50, NCtx = 12,
        ActFn = Activation.Gelu, Eps = 1e-12, ModelName = "tiny-bert",
    }, seed: 5);

    [Fact]
    public void Reader_gives_each_real_token_the_activation_it_has_in_its_unpadded_sequence()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyEncoder();
        long[][] rows = [[Cls, 7, 9, 23, Sep], [Cls, 30, 8, 11, 12, 13, Sep]];
        var padded = torch.tensor(new long[] { Cls, 7, 9, 23, Sep, Pad, Pad, Cls, 30, 8, 11, 12, 13, Sep }, [2, 7]); // [batch, pos]
        const string hook = "blocks.1.hook_resid_post";
        var read = EncoderActivations.Reader(model, Pad, hook)(padded)[0]; // [2, 7, 16]

        for (int b = 0; b < 2; b++)
        {
            var (_, cache) = model.RunWithCache(torch.tensor(rows[b]).unsqueeze(0), n => n == hook);
            using (cache)
            {
                var alone = cache[hook][0]; // [len, 16]
                var inBatch = read[b].narrow(0, 0, rows[b].Length);
                Assert.True((alone - inBatch).abs().max().item<float>() < 1e-5f, $"row {b} differs from its unpadded run");
            }
        }
        // Without the mask the short row's tokens would attend to the padding: the reader must not match that run.
        var (_, unmasked) = model.RunWithCache(padded, n => n == hook);
        using (unmasked) Assert.True((unmasked[hook][0].narrow(0, 0, 5) - read[0].narrow(0, 0, 5)).abs().max().item<float>() > 1e-3f);
    }

    [Fact]
    public void Store_chunks_keep_only_the_words_in_order_leaving_out_cls_sep_and_padding()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TinyEncoder();
        var padded = torch.tensor(new long[] { Cls, 7, 9, 23, Sep, Pad, Pad, Cls, 30, 8, 11, 12, 13, Sep }, [2, 7]);
        const string hook = "blocks.0.hook_resid_post";
        var reader = EncoderActivations.Reader(model, Pad, hook);
        using var chunk = ActivationChunks.FromModel(reader, [padded], [Cls, Sep, Pad]).Single();
        Assert.Equal(8, chunk.Rows); // 3 + 5 words

        var full = reader(padded)[0]; // [2, 7, 16]
        var expected = torch.cat([full[0].narrow(0, 1, 3), full[1].narrow(0, 1, 5)], 0); // [8, 16]
        Assert.True((chunk.Input - expected).abs().max().item<float>() == 0);
    }

    [Fact]
    public void Packed_encoder_rows_hold_every_text_whole_between_cls_and_sep()
    {
        var tokenizer = PretrainedEncoders.MiniLmTokenizer();
        string[] texts = ["The jury praised the city.", "It was a fine day in Atlanta.", "Nobody came.",
            string.Join(" ", Enumerable.Repeat("a very long sentence that must be cut", 6))];
        const int size = 24;
        var rows = EncoderContexts.Pack(texts, tokenizer, size).ToList();

        var body = new List<long>();
        foreach (var row in rows)
        {
            Assert.Equal(size, row.Length);
            Assert.Equal(tokenizer.ClsTokenId, row[0]);
            int sep = Array.IndexOf(row, (long)tokenizer.SepTokenId);
            Assert.True(sep > 1, "each row has words, then [SEP]");
            Assert.All(row.Skip(sep + 1), id => Assert.Equal(tokenizer.PadTokenId, id));
            body.AddRange(row.Skip(1).Take(sep - 1));
        }
        // Nothing is lost or reordered.
        Assert.Equal(texts.SelectMany(t => tokenizer.Encode(t, addSpecialTokens: false)).Select(i => (long)i), body);
        // The three short sentences (6 + 9 + 3 ids) fit one row; the long one does not and starts a row of its own.
        int shortIds = texts.Take(3).Sum(t => tokenizer.Encode(t, false).Count);
        Assert.True(shortIds <= size - 2);
        Assert.Equal(shortIds, Array.IndexOf(rows[0], (long)tokenizer.SepTokenId) - 1);
    }
}
