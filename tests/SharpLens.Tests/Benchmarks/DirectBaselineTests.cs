using SharpLens.Benchmarks;
using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Tests.Benchmarks;

/// <summary>The benchmark's baseline must compute what HookedTransformer computes, or its speed says nothing.</summary>
public class DirectBaselineTests
{
    [Fact]
    public void Direct_GPT2_forward_gives_the_logits_of_HookedTransformer_with_the_same_weights()
    {
        using var model = new HookedTransformer(new ModelConfig
        {
            DModel = 64, NLayers = 2, NHeads = 4, DHead = 16, DMlp = 256, DVocab = 97, NCtx = 32,
        }, seed: 1);
        using var _ = no_grad();
        var generator = new Generator(2);
        foreach (var (name, p) in model.named_parameters())
            if (name.Split('.')[^1] is var leaf && (leaf.StartsWith("b_", StringComparison.Ordinal) || leaf is "w" or "b")) p.normal_(0, 0.1, generator);
        using var direct = new DirectGpt2(model);
        using var scope = NewDisposeScope();
        var tokens = randint(0, 97, [2, 24], dtype: ScalarType.Int64, generator: new Generator(3));
        var expected = model.Run(tokens);
        var actual = direct.Forward(tokens);
        Assert.Equal(expected.shape, actual.shape);
        Assert.True((expected - actual).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Matmul_flops_of_GPT2_small_at_1024_tokens_match_the_hand_count()
    {
        // Per layer: qkv 2·T·768·2304, QKᵀ and PV 2·2·T²·768, W_O 2·T·768², MLP 2·2·T·768·3072; unembed 2·T·768·50257.
        double T = 1024, perLayer = 2 * T * 768 * 2304 + 4 * T * T * 768 + 2 * T * 768 * 768 + 4 * T * 768 * 3072;
        Assert.Equal(12 * perLayer + 2 * T * 768 * 50257, ForwardBenchmark.ForwardMatmulFlops(ForwardBenchmark.Gpt2SmallShape(), 1024), 1e-6);
    }

    [Fact]
    public void Json_report_has_every_key_the_issue_asks_for()
    {
        var result = ForwardBenchmark.Run(new BenchmarkOptions(SeqLen: 16, Layers: 1, Repeats: 1));
        using var json = System.Text.Json.JsonDocument.Parse(result.ToJson());
        foreach (var key in new[] { "gemm_gflops", "ceiling_tokens_per_s", "direct_tokens_per_s", "plain_tokens_per_s",
                                    "noop_hooks_tokens_per_s", "cache_tokens_per_s", "cache_peak_bytes", "cached_tensor_bytes",
                                    "threads", "seq_len", "max_abs_diff" })
            Assert.True(json.RootElement.TryGetProperty(key, out var value) && value.GetDouble() >= 0, $"missing or negative: {key}");
        Assert.True(result.MaxAbsDiff < 1e-4);
        Assert.True(result.CachedTensorBytes > 0);
    }
}
