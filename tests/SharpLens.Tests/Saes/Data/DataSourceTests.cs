using SharpLens.Interop;
using SharpLens.Saes.Data;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes.Data;

public sealed class DataSourceTests : IDisposable
{
    readonly string _folder = Directory.CreateTempSubdirectory("sae-data").FullName;
    public void Dispose() => Directory.Delete(_folder, true);
    string PathOf(string name) => Path.Combine(_folder, name);

    [Fact]
    public void Plain_text_splits_into_paragraphs_or_whole_files()
    {
        File.WriteAllText(PathOf("a.txt"), "First line\nof one paragraph.\n\n\n  \nSecond.\n");
        File.WriteAllText(PathOf("b.txt"), "Other file.");
        Assert.Equal(["First line of one paragraph.", "Second.", "Other file."], TextSources.PlainText(_folder));
        Assert.Equal(["First line\nof one paragraph.\n\n\n  \nSecond.\n"], TextSources.PlainText(PathOf("a.txt"), TextSplit.File));
    }

    [Fact]
    public void Jsonl_reads_the_named_field_and_names_the_bad_line()
    {
        File.WriteAllText(PathOf("d.jsonl"), "{\"body\": \"one\", \"id\": 1}\n\n{\"body\": \"two\"}\n");
        Assert.Equal(["one", "two"], TextSources.Jsonl(PathOf("d.jsonl"), field: "body"));
        var e = Assert.Throws<DataSourceException>(() => TextSources.Jsonl(PathOf("d.jsonl")).ToList());
        Assert.Contains("line 1 has no string field 'text'", e.Message);
    }

    [Fact]
    public void A_token_stream_is_cut_into_contexts_that_start_with_BOS()
    {
        var contexts = Contexts.FromTokenStream(Enumerable.Range(1, 22).Select(i => (long)i), contextSize: 5, bosTokenId: 0).ToList();
        // 22 tokens make five bodies of 4 (BOS + 4 = 5); the last 2 tokens do not fill a context and are dropped.
        Assert.Equal(5, contexts.Count);
        Assert.Equal([0, 1, 2, 3, 4], contexts[0]);
        Assert.Equal([0, 17, 18, 19, 20], contexts[4]);
        var plain = Contexts.FromTokenStream(Enumerable.Range(1, 22).Select(i => (long)i), contextSize: 5).ToList();
        Assert.Equal(4, plain.Count);
        Assert.Equal([16, 17, 18, 19, 20], plain[3]);
    }

    [Fact]
    public void Texts_are_tokenized_and_joined_by_BOS_between_documents()
    {
        var gpt2 = ModelTokenizer.Gpt2();
        string[] docs = ["The cat sat on the mat.", "A dog barked twice at the moon tonight."];
        var contexts = Contexts.FromTexts(docs, gpt2, contextSize: 6).ToList();
        long[] stream = [.. gpt2.Encode(docs[0]).Select(i => (long)i), 50256, .. gpt2.Encode(docs[1]).Select(i => (long)i)];
        Assert.Equal(stream.Length / 5, contexts.Count);
        for (int c = 0; c < contexts.Count; c++)
            Assert.Equal([50256, .. stream.AsSpan(5 * c, 5).ToArray()], contexts[c]);
        Assert.Equal(" cat", gpt2.ToStrTokens([(int)contexts[0][2]])[0]);
    }

    [Fact]
    public void Npy_and_nanogpt_bin_token_files_give_the_ids_they_hold()
    {
        NumpyFiles.SaveNpy(PathOf("stream.npy"), torch.arange(1, 10, dtype: ScalarType.Int32));
        Assert.Equal([[7, 1, 2, 3], [7, 4, 5, 6], [7, 7, 8, 9]], Contexts.FromTokenFile(PathOf("stream.npy"), 4, bosTokenId: 7));

        NumpyFiles.SaveNpy(PathOf("rows.npy"), torch.tensor(new long[] { 5, 6, 7, 8, 9, 10 }, [2, 3]));
        Assert.Equal([[5, 6, 7], [8, 9, 10]], Contexts.FromTokenFile(PathOf("rows.npy"), 3));
        var e = Assert.Throws<DataSourceException>(() => Contexts.FromTokenFile(PathOf("rows.npy"), 4));
        Assert.Contains("pass contextSize: 3", e.Message);

        // nanoGPT writes np.uint16 ids with arr.tofile(): raw little-endian, no header.
        ushort[] ids = [50256, 1, 65535, 300];
        File.WriteAllBytes(PathOf("train.bin"), [.. ids.SelectMany(BitConverter.GetBytes)]);
        Assert.Equal([[50256, 1], [65535, 300]], Contexts.FromTokenFile(PathOf("train.bin"), 2));
    }

    [Fact]
    public void Batches_stack_contexts_into_token_tensors()
    {
        var batches = Contexts.Batches(Contexts.FromTokenStream(Enumerable.Range(0, 15).Select(i => (long)i), 3), batchSize: 2).ToList();
        Assert.Equal([[2, 3], [2, 3], [1, 3]], batches.Select(b => b.shape));
        Assert.Equal([9L, 10, 11, 12, 13, 14], batches[1].data<long>().ToArray().Concat(batches[2].data<long>().ToArray()).Skip(3));
    }
}
