using SharpLens.Models;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes.Data;

public class ActivationStoreTests
{
    const int Bos = 0, ContextSize = 8, StoreBatch = 2;

    /// <summary>Contexts of a stream of distinct ids 1..n behind BOS, so every kept row names the position it came from.</summary>
    static List<Tensor> TokenBatches(int contexts) =>
        [.. Contexts.Batches(Contexts.FromTokenStream(Enumerable.Range(1, contexts * (ContextSize - 1)).Select(i => (long)i), ContextSize, Bos), StoreBatch)];

    /// <summary>A stand-in model: the activation of token t is [t, -t, 0.5 t]; with an output hook, [10 t].</summary>
    static ActivationReader FakeModel(bool withOutput = false) => tokens =>
    {
        var t = tokens.to(ScalarType.Float32).unsqueeze(-1); // [batch, pos, 1]
        var input = torch.cat([t, -t, 0.5f * t], -1); // [batch, pos, 3]
        return withOutput ? [input.DetachFromDisposeScope(), (10f * t).DetachFromDisposeScope()] : [input.DetachFromDisposeScope()];
    };

    static ActivationStoreOptions Options(long seed = 3) => new() { BufferRows = 32, TrainBatchSize = 8, Seed = seed };

    static List<float[]> Drain(ActivationStore store, List<long>? peaks = null)
    {
        var rows = new List<float[]>();
        while (store.NextBatch() is { } batch)
        {
            using (batch)
            {
                peaks?.Add(store.BufferedRows + store.PendingRows);
                Assert.True(store.BufferedRows <= store.Capacity);
                float[] flat = batch.Input.data<float>().ToArray();
                for (int r = 0; r < batch.Rows; r++) rows.Add(flat[(3 * r)..(3 * r + 3)]);
            }
        }
        return rows;
    }

    [Fact]
    public void Every_text_position_is_served_exactly_once_and_BOS_never()
    {
        using var store = ActivationStore.FromModel(FakeModel(), TokenBatches(10), Options(), excludedTokenIds: [Bos]);
        var rows = Drain(store);
        Assert.Equal(Enumerable.Range(1, 70).Select(i => (float)i), rows.Select(r => r[0]).Order());
        Assert.All(rows, r => Assert.Equal([r[0], -r[0], 0.5f * r[0]], r));
        Assert.Equal(70, store.RowsServed);
    }

    [Fact]
    public void The_buffer_never_holds_more_than_its_size()
    {
        // Each model call gives 2 contexts × 7 text tokens = 14 rows; the buffer holds 32, so a refill splits a call.
        using var store = ActivationStore.FromModel(FakeModel(), TokenBatches(20), Options());
        var outside = new List<long>();
        var rows = Drain(store, outside);
        Assert.Equal(140, rows.Count);
        Assert.Equal(32, store.PeakBufferedRows);
        Assert.All(outside, held => Assert.True(held <= 32 + 14, $"buffer + pending held {held} rows"));
    }

    [Fact]
    public void Batches_mix_positions_from_several_model_calls()
    {
        using var store = ActivationStore.FromModel(FakeModel(), TokenBatches(20), Options());
        using var first = store.NextBatch()!;
        // Model call c produced ids 14c+1 … 14c+14; a shuffled buffer of 32 rows spans at least three calls.
        var calls = first.Input[.., 0].data<float>().ToArray().Select(id => (int)(id - 1) / 14).Distinct().Count();
        Assert.True(calls >= 2, $"the first batch came from {calls} model call(s)");
        Assert.NotEqual(Enumerable.Range(1, 8).Select(i => (float)i), first.Input[.., 0].data<float>().ToArray());
    }

    [Fact]
    public void The_same_seed_gives_the_same_batches_and_another_seed_other_ones()
    {
        List<float[]> Run(long seed)
        {
            using var store = ActivationStore.FromModel(FakeModel(), TokenBatches(10), Options(seed));
            return Drain(store);
        }
        var a = Run(5);
        Assert.Equal(a, Run(5));
        Assert.NotEqual(a.Select(r => r[0]), Run(6).Select(r => r[0]));
    }

    [Fact]
    public void Transcoder_batches_pair_each_input_with_the_output_at_the_same_position()
    {
        using var store = ActivationStore.FromModel(FakeModel(withOutput: true), TokenBatches(10), Options());
        int batches = 0;
        while (store.NextBatch() is { } batch)
            using (batch)
            {
                batches++;
                Assert.Equal([batch.Rows, 1], batch.Output!.shape);
                Assert.True((batch.Output[.., 0] == 10 * batch.Input[.., 0]).all().item<bool>());
            }
        Assert.Equal(9, batches); // 70 rows in batches of 8: eight full, one of 6
    }

    [Fact]
    public void Activations_saved_to_shards_give_the_same_batches_as_running_the_model()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sae-shards-{Guid.NewGuid():N}");
        try
        {
            long written = ActivationShards.Write(folder, ActivationChunks.FromModel(FakeModel(withOutput: true), TokenBatches(10)), chunksPerShard: 2);
            Assert.Equal(70, written);
            Assert.Equal(3, Directory.GetFiles(folder, "shard-*.safetensors").Length); // 5 model calls, 2 per shard
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(folder)!, Path.GetFileName(folder) + ".tmp-*"));

            using var fromModel = ActivationStore.FromModel(FakeModel(withOutput: true), TokenBatches(10), Options(9));
            using var fromDisk = ActivationStore.FromShards(folder, Options(9));
            while (fromModel.NextBatch() is { } expected)
            {
                using var _ = expected;
                using var actual = fromDisk.NextBatch()!;
                Assert.Equal(expected.Input.data<float>().ToArray(), actual.Input.data<float>().ToArray());
                Assert.Equal(expected.Output!.data<float>().ToArray(), actual.Output!.data<float>().ToArray());
            }
            Assert.Null(fromDisk.NextBatch());
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }

    [Fact]
    public void The_model_reader_returns_the_cached_activation_and_stops_at_its_hook()
    {
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(3, 10, 50);
        var (_, cache) = model.RunWithCache(tokens, ["blocks.0.hook_resid_post", "blocks.0.attn.hook_z"]);
        int laterCalls = 0;
        using var counter = model.AddHook("blocks.1.hook_resid_pre", (a, h) => { laterCalls++; return null; });

        var read = ModelActivations.Reader(model, "blocks.0.attn.hook_z", "blocks.0.hook_resid_post")(tokens);
        Assert.Equal(0, laterCalls);
        Assert.Equal([3, 10, 32], read[0].shape); // hook_z [batch, pos, head, d_head] flattened
        Assert.True((read[0] == cache["blocks.0.attn.hook_z"].flatten(2)).all().item<bool>());
        Assert.True((read[1] == cache["blocks.0.hook_resid_post"]).all().item<bool>());
        Assert.False(read[1].requires_grad);
        model.Run(tokens);
        Assert.Equal(1, laterCalls);
    }
}

public class ActivationStoreOnTextTests
{
    [Fact]
    public void Brown_sentences_flow_through_a_model_into_batches_of_its_residual_stream()
    {
        var corpus = SharpLens.Corpora.BrownCorpus.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt"));
        var gpt2 = SharpLens.Tokenization.ModelTokenizer.Gpt2();
        var contexts = Contexts.FromTexts(corpus.Texts(), gpt2, contextSize: 16).ToList();
        using var model = new HookedTransformer(TestModels.Tiny() with { DVocab = 50257, TokenizerName = "gpt2" }, seed: 2);
        using var store = ActivationStore.FromModel(model, "blocks.0.hook_resid_post", contexts,
            new ActivationStoreOptions { BufferRows = 64, TrainBatchSize = 16, Seed = 1 }, contextsPerCall: 4);

        // The independent reference: every position's activation from RunWithCache, minus BOS (first and separators).
        var tokens = torch.tensor(contexts.SelectMany(c => c).ToArray(), [contexts.Count, 16]);
        var (_, cache) = model.RunWithCache(tokens, ["blocks.0.hook_resid_post"]);
        var expected = cache["blocks.0.hook_resid_post"][tokens != 50256]; // [n, d_model]
        var served = torch.cat([.. store.Batches().Select(batch => batch.Input)], 0);
        Assert.Equal(expected.shape, served.shape);
        Assert.True(expected.shape[0] > 100, $"only {expected.shape[0]} text positions");
        // The same rows in another order: sort both by their first coordinate and compare.
        var a = expected.index_select(0, expected[.., 0].argsort());
        var b = served.index_select(0, served[.., 0].argsort());
        Assert.True(a.allclose(b, rtol: 0, atol: 1e-5), $"max difference {(a - b).abs().max().item<float>()}");
        Assert.False(served.narrow(0, 0, 16).allclose(expected.narrow(0, 0, 16)), "batches come out in stream order, unshuffled");
    }
}
