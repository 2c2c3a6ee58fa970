using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>
/// One layer's attention core at GPT-2 small's shape (12 heads of 64, causal), three ways, timed interleaved: the fused
/// kernel, the explicit path as it was (einsum, then divide, mask, softmax, einsum), and the explicit path as
/// <see cref="Models.Components.Attention"/> now computes it (scale folded into q, batched products, mask in place).
/// What a hook on hook_pattern costs per layer, without the rest of the model's noise.
/// </summary>
public static class AttentionPathBenchmark
{
    public static Interleaved Run(int seqLen = 1024, int rounds = 15, TextWriter? progress = null)
    {
        using var _ = no_grad();
        var generator = new Generator(1);
        using var q = randn([1, seqLen, 12, 64], generator: generator); // [batch, pos, head, d_head]
        using var k = randn([1, seqLen, 12, 64], generator: generator);
        using var v = randn([1, seqLen, 12, 64], generator: generator);
        using var disallowed = ones(seqLen, seqLen, ScalarType.Bool).triu(1); // [query, key]
        double scale = 8;
        var variants = new (string, Action)[]
        {
            ("fused", () =>
            {
                using var scope = NewDisposeScope();
                nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_casual: true).transpose(1, 2).contiguous();
            }),
            ("explicit_einsum", () =>
            {
                using var scope = NewDisposeScope();
                var scores = einsum("bqhd,bkhd->bhqk", q, k).div_(scale).masked_fill_(disallowed, float.NegativeInfinity);
                einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v).contiguous();
            }),
            ("explicit_matmul", () =>
            {
                using var scope = NewDisposeScope();
                var scores = q.div(scale).transpose(1, 2).MatMul(k.permute(0, 2, 3, 1)).masked_fill_(disallowed, float.NegativeInfinity);
                scores.softmax(-1).MatMul(v.transpose(1, 2)).transpose(1, 2).contiguous();
            }),
        };
        return Interleaved.Measure(variants, rounds, progress);
    }
}
