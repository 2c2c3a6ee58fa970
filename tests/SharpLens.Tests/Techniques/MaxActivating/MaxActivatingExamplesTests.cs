using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Techniques.MaxActivating;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.MaxActivating;

public class MaxActivatingExamplesTests
{
    static List<Tensor> Corpus(int batches, int batch, int pos, int vocab, int seed) =>
        [.. Enumerable.Range(0, batches).Select(i => TestModels.RandomTokens(batch, pos, vocab, seed: seed + i))];

    static double GeluNew(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    [Fact]
    public void Planted_neuron_reading_token_7_fires_hardest_exactly_on_token_7()
    {
        // No norm and no layer-0 attention output: resid_mid = W_E[token] + W_pos[pos], so neuron 5 of layer 0, whose input
        // weights are W_E[7] scaled to give 4 on token 7, has a known activation gelu((W_E[t] + W_pos[p]) · w + b) everywhere.
        using var model = TestModels.RandomModel(TestModels.Tiny(norm: Normalization.None));
        const int neuron = 5;
        Tensor w, bias, wPos, wE;
        using (no_grad())
        {
            model.blocks[0].attn.W_O.zero_();
            model.blocks[0].attn.b_O.zero_();
            model.pos_embed!.W_pos.mul_(0.1);
            wE = model.embed.W_E.detach().clone();
            w = wE[7] * (4.0 / wE[7].pow(2).sum().item<float>());
            model.blocks[0].mlp!.W_in[.., neuron] = w;
            bias = model.blocks[0].mlp!.b_in[neuron].detach().clone();
            wPos = model.pos_embed.W_pos.detach().clone();
        }
        var corpus = Corpus(batches: 6, batch: 4, pos: 20, vocab: 50, seed: 11);
        var sevens = corpus.Select(t => (t == 7).sum().item<long>()).Sum();
        const int k = 6;
        Assert.True(sevens >= k, $"the corpus has only {sevens} sevens");

        var result = MaxActivatingExamples.Find(model, ActivationTarget.Neuron(0, neuron), corpus, new MaxActivatingSettings { TopK = k, ContextBefore = 3, ContextAfter = 2 });

        Assert.Equal(k, result.Top.Count);
        double b = bias.item<float>();
        // Expected: every token-7 position's known activation, highest first.
        var expected = (from s in Enumerable.Range(0, corpus.Count * 4)
                        from p in Enumerable.Range(0, 20)
                        where corpus[s / 4][s % 4, p].item<long>() == 7
                        select (Sequence: (long)s, Position: p, Activation: GeluNew((wE[7] + wPos[p]).dot(w).item<float>() + b)))
                       .OrderByDescending(e => e.Activation).Take(k).ToList();
        for (int i = 0; i < k; i++)
        {
            var got = result.Top[i];
            Assert.Equal(7, got.Token);
            Assert.Equal(expected[i].Sequence, got.Sequence);
            Assert.Equal(expected[i].Position, got.Position);
            Assert.Equal(expected[i].Activation, got.Activation, 4);
            var row = corpus[(int)got.Sequence / 4][got.Sequence % 4];
            int start = Math.Max(0, got.Position - 3);
            Assert.Equal(row[start..Math.Min(20, got.Position + 3)].to(ScalarType.Int32).data<int>().ToArray(), got.Context);
        }
        Assert.Equal(24, result.Sequences);
        Assert.Equal(24 * 20, result.Positions);
    }

    [Fact]
    public void Streamed_top_k_and_histogram_equal_a_brute_force_pass_over_the_whole_corpus()
    {
        using var model = TestModels.RandomModel();
        var corpus = Corpus(batches: 5, batch: 3, pos: 16, vocab: 50, seed: 40);
        var direction = randn(32, generator: new Generator(4));
        const string hook = "blocks.1.hook_resid_mid";
        var target = ActivationTarget.AlongDirection(hook, direction);
        var settings = new MaxActivatingSettings { TopK = 7, ContextBefore = 2, ContextAfter = 1, HistogramRange = (-1.0, 1.0), HistogramBins = 8 };
        var result = MaxActivatingExamples.Find(model, target, corpus, settings);

        // Brute force: one forward over everything, every activation sorted.
        var all = cat(corpus, 0); // [15, 16]
        Tensor acts;
        using (no_grad())
        {
            var (_, cache) = model.RunWithCache(all, [hook]);
            using (cache) acts = cache[hook].matmul(direction).to(ScalarType.Float64); // [15, 16]
        }
        var values = acts.data<double>().ToArray();
        var order = Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).Take(7).ToList();
        for (int i = 0; i < 7; i++)
        {
            Assert.Equal(order[i] / 16, result.Top[i].Sequence);
            Assert.Equal(order[i] % 16, result.Top[i].Position);
            Assert.Equal(values[order[i]], result.Top[i].Activation, 4);
        }

        var h = result.Histogram;
        Assert.Equal(values.Count(v => v < -1), h.Underflow);
        Assert.Equal(values.Count(v => v > 1), h.Overflow);
        Assert.True(h.Underflow > 0 && h.Overflow > 0, "the test range should cut off both tails");
        for (int bin = 0; bin < 8; bin++)
        {
            double lo = -1 + 0.25 * bin, hi = lo + 0.25;
            Assert.Equal(values.Count(v => v >= lo && (v < hi || (bin == 7 && v <= hi))), h.Counts[bin]);
        }
        Assert.Equal(values.Length, h.Count);
        Assert.Equal(values.Average(), h.Mean, 4);
        Assert.Equal(values.Max(), h.SeenMax, 4);
    }

    [Fact]
    public void Text_lines_are_tokenized_and_padding_never_counts()
    {
        var config = TestModels.Tiny() with { DVocab = 50257, TokenizerName = "gpt2", NCtx = 32, BosTokenId = 50256 };
        using var model = TestModels.RandomModel(config);
        string[] lines = ["The cat sat on the mat.", "Hello", "Induction heads copy what came after the last copy of this token.", "x y z"];
        var target = ActivationTarget.Neuron(1, 3);
        var result = MaxActivatingExamples.Find(model, target, lines, new MaxActivatingSettings { TopK = 5, BatchSize = 3, ContextBefore = 50, ContextAfter = 50 });

        var perLine = lines.Select(l => model.ToTokens(l)).ToList(); // each [1, n]
        Assert.Equal(lines.Length, result.Sequences);
        Assert.Equal(perLine.Sum(t => t.shape[1]), result.Positions);
        Assert.Equal(5, result.Top.Count);
        foreach (var ex in result.Top)
        {
            var alone = perLine[(int)ex.Sequence];
            Assert.Equal(alone[0].to(ScalarType.Int32).data<int>().ToArray(), ex.Context); // the whole line, no padding
            using var _ = no_grad();
            var (_, cache) = model.RunWithCache(alone, [target.Hook]);
            using (cache) Assert.Equal(cache[target.Hook][0, ex.Position, 3].item<float>(), ex.Activation, 4);
        }
    }

    [Fact]
    public void Unknown_hooks_and_out_of_range_neurons_are_named()
    {
        using var model = TestModels.RandomModel();
        var corpus = Corpus(1, 2, 8, 50, 1);
        Assert.Throws<HookNotFoundException>(() => MaxActivatingExamples.Find(model, ActivationTarget.Feature("blocks.9.mlp.hook_post", 0), corpus));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => MaxActivatingExamples.Find(model, ActivationTarget.Neuron(0, 64), corpus));
        Assert.Contains("blocks.0.mlp.hook_post has 64 features", error.Message);
    }
}
