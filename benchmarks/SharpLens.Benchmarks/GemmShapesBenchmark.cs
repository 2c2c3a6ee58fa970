using System.Globalization;
using System.Text;
using SharpLens.Native;
using SharpLens.Organisms;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>One matrix product [M, K] × [K, N] timed in float32 and in bfloat16.</summary>
/// <param name="Fp32Gflops">Median of the rounds' float32 rates.</param>
/// <param name="Bf16Gflops">Median of the rounds' bfloat16 rates.</param>
/// <param name="Speedup">bf16 rate / float32 rate in each round: median, min and max.</param>
public sealed record GemmShapeResult(string Model, string Role, long M, long K, long N, double Fp32Gflops, double Bf16Gflops, Spread Speedup);

/// <summary>
/// libtorch's bf16 GEMM against its fp32 GEMM on the shapes SharpLens multiplies: every weight product of the GPT-2-small
/// forward the main benchmark runs (1 × 1024 tokens) and of a brown-lm training step (its batch of windows, forward
/// shapes; backward repeats them transposed). Each shape's two dtypes are timed interleaved, round by round.
/// </summary>
public static class GemmShapesBenchmark
{
    public static IReadOnlyList<(string Model, string Role, long M, long K, long N)> Shapes()
    {
        var gpt2 = ForwardBenchmark.Gpt2SmallShape();
        const long T = 1024;
        var settings = BrownLanguageModel.Settings(BrownLanguageModel.Name);
        int vocab = settings.VocabSize ?? 50257;
        var lm = settings.ModelConfig(vocab, vocab - 1, BrownLanguageModel.Name);
        long tokens = settings.TokensPerStep;
        return
        [
            ("gpt2-small forward", "q, k, v", T, gpt2.DModel, 3L * gpt2.NHeads * gpt2.DHead),
            ("gpt2-small forward", "W_O", T, gpt2.NHeads * gpt2.DHead, gpt2.DModel),
            ("gpt2-small forward", "W_in", T, gpt2.DModel, gpt2.DMlp),
            ("gpt2-small forward", "W_out", T, gpt2.DMlp, gpt2.DModel),
            ("gpt2-small forward", "W_U", T, gpt2.DModel, gpt2.DVocab),
            ("brown-lm training", "q, k, v", tokens, lm.DModel, 3L * lm.NHeads * lm.DHead),
            ("brown-lm training", "W_O", tokens, lm.NHeads * lm.DHead, lm.DModel),
            ("brown-lm training", "W_gate / W_in", tokens, lm.DModel, lm.DMlp),
            ("brown-lm training", "W_out", tokens, lm.DMlp, lm.DModel),
            ("brown-lm training", "W_U", tokens, lm.DModel, vocab),
        ];
    }

    public static IReadOnlyList<GemmShapeResult> Run(int rounds = 5, int? threads = null, TextWriter? progress = null)
    {
        TorchNative.EnsureLoaded();
        if (threads is int t) UncaughtNativeCalls.SetNumThreads(t, "--threads");
        using var _ = no_grad();
        progress?.WriteLine($"GEMM shapes, float32 vs bfloat16, {get_num_threads()} threads, {rounds} interleaved rounds");
        var results = new List<GemmShapeResult>();
        foreach (var (model, role, m, k, n) in Shapes())
        {
            using var scope = NewDisposeScope();
            var a32 = randn(m, k);
            var b32 = randn(k, n);
            var a16 = a32.to(ScalarType.BFloat16);
            var b16 = b32.to(ScalarType.BFloat16);
            int times = Math.Max(1, (int)(2e10 / (2.0 * m * k * n))); // about 20 GFLOP a measurement
            var timings = Interleaved.Measure(
            [
                ("fp32", () => Repeat(times, () => a32.mm(b32).Dispose())),
                ("bf16", () => Repeat(times, () => a16.mm(b16).Dispose())),
            ], rounds);
            double flop = 2.0 * m * k * n * times;
            var row = new GemmShapeResult(model, role, m, k, n, flop / timings.MedianSeconds("fp32") / 1e9, flop / timings.MedianSeconds("bf16") / 1e9,
                timings.TimeRatio("fp32", "bf16"));
            progress?.WriteLine($"{model} {role} [{m}x{k}]x[{k}x{n}]: fp32 {row.Fp32Gflops:F0}, bf16 {row.Bf16Gflops:F0} GFLOP/s, bf16/fp32 {row.Speedup}");
            results.Add(row);
        }
        return results;
    }

    static void Repeat(int times, Action action)
    {
        for (int i = 0; i < times; i++) action();
    }

    public static string ToTable(IReadOnlyList<GemmShapeResult> rows)
    {
        var c = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.AppendLine("model               product        [M x K] x [K x N]         fp32 GFLOP/s  bf16 GFLOP/s  bf16 / fp32 (min–max)");
        foreach (var r in rows)
            text.AppendLine($"{r.Model,-19} {r.Role,-14} {$"[{r.M}x{r.K}]x[{r.K}x{r.N}]",-25} {r.Fp32Gflops.ToString("F0", c),12}  {r.Bf16Gflops.ToString("F0", c),12}  {r.Speedup}");
        return text.ToString();
    }
}
