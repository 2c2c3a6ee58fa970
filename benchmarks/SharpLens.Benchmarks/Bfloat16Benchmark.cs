using System.Globalization;
using SharpLens.Models;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>The bf16 forward against the float32 one and bf16 GEMMs against float32 GEMMs, from one interleaved run.</summary>
/// <param name="Speedup">float32 forward time / bf16 forward time, per round.</param>
/// <param name="GemmSpeedup">float32 time / bf16 time of the MLP-shaped GEMM, per round: what the hardware allows.</param>
public sealed record Bfloat16Result(int Layers, int SeqLen, int Threads, int Rounds, double Fp32TokensPerS, double Bf16TokensPerS, Spread Speedup,
    double Fp32GemmGflops, double Bf16GemmGflops, Spread GemmSpeedup, double MaxLogProbDiff)
{
    public string ToTable()
    {
        var c = CultureInfo.InvariantCulture;
        return $"""
            GPT-2-small shape, {Layers} layers, 1 x {SeqLen} tokens, {Threads} threads, {Rounds} interleaved rounds (fp32, bf16, GEMM fp32, GEMM bf16)
            HookedTransformer.Run float32   {Fp32TokensPerS.ToString("N0", c)} tok/s
            HookedTransformer.Run bfloat16  {Bf16TokensPerS.ToString("N0", c)} tok/s
            bf16 / fp32 tokens/s            {Speedup}   target >= 1.6: {(Speedup.Median >= 1.6 ? "met" : "MISSED")}
            GEMM [{Math.Max(SeqLen, 256)}x768]x[768x3072]      fp32 {Fp32GemmGflops.ToString("F0", c)}, bf16 {Bf16GemmGflops.ToString("F0", c)} GFLOP/s; bf16 / fp32 {GemmSpeedup}
            max |log-prob(bf16) - log-prob(fp32)|  {MaxLogProbDiff.ToString("g3", c)} (same random weights, rounded to bf16)
            """;
    }
}

/// <summary>
/// Only the four timings the bf16 question needs, interleaved in short rounds (the full benchmark's rounds run eight
/// variants, long enough for a shared machine's load to change within one).
/// </summary>
public static class Bfloat16Benchmark
{
    public static Bfloat16Result Run(BenchmarkOptions options, TextWriter? progress = null)
    {
        options = options.Validated();
        TorchNative.EnsureLoaded();
        if (options.Threads is int threads) UncaughtNativeCalls.SetNumThreads(threads);
        using var _ = no_grad();
        var cfg = ForwardBenchmark.Gpt2SmallShape(options.Layers);
        using var fp32 = new HookedTransformer(cfg, seed: options.Seed);
        using var bf16 = new HookedTransformer(cfg, new ModelOptions("cpu", ScalarType.BFloat16), seed: options.Seed);
        using var tokens = randint(0, cfg.DVocab, [1, options.SeqLen], dtype: ScalarType.Int64, generator: new Generator((ulong)options.Seed + 1));
        double diff;
        using (var a = fp32.Run(tokens).log_softmax(-1))
        using (var b = bf16.Run(tokens).to(ScalarType.Float32).log_softmax(-1))
            diff = (a - b).abs().max().item<float>();

        long m = Math.Max(options.SeqLen, 256);
        using var a32 = randn(m, 768);
        using var b32 = randn(768, 3072);
        using var a16 = a32.to(ScalarType.BFloat16);
        using var b16 = b32.to(ScalarType.BFloat16);
        const int times = 10;
        var timings = Interleaved.Measure(
        [
            ("fp32", () => fp32.Run(tokens).Dispose()),
            ("bf16", () => bf16.Run(tokens).Dispose()),
            ("gemm_fp32", () => { for (int i = 0; i < times; i++) a32.mm(b32).Dispose(); }),
            ("gemm_bf16", () => { for (int i = 0; i < times; i++) a16.mm(b16).Dispose(); }),
        ], options.Repeats, progress);
        double gemmFlop = 2.0 * m * 768 * 3072 * times;
        return new Bfloat16Result(cfg.NLayers, options.SeqLen, get_num_threads(), options.Repeats,
            options.SeqLen / timings.MedianSeconds("fp32"), options.SeqLen / timings.MedianSeconds("bf16"), timings.TimeRatio("fp32", "bf16"),
            gemmFlop / timings.MedianSeconds("gemm_fp32") / 1e9, gemmFlop / timings.MedianSeconds("gemm_bf16") / 1e9, timings.TimeRatio("gemm_fp32", "gemm_bf16"), diff);
    }
}
