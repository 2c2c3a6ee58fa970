using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpLens.Benchmarks;

/// <summary>One benchmark run's numbers, the ratios the targets are stated in, and its two renderings.</summary>
public sealed record BenchmarkResult
{
    public int SeqLen { get; init; }
    public int Layers { get; init; }
    public int Threads { get; init; }
    public int Repeats { get; init; }
    public int HookPoints { get; init; }
    /// <summary>Largest |logit difference| between HookedTransformer and the direct forward on the same weights.</summary>
    public double MaxAbsDiff { get; init; }

    /// <summary>The median round's GEMM rate (the better of the two shapes in each round): the ceiling's rate.</summary>
    [JsonPropertyName("gemm_gflops")] public double GemmGflops { get; init; }
    [JsonPropertyName("gemm_model_shape_gflops")] public double GemmModelShapeGflops { get; init; }
    [JsonPropertyName("gemm_square_gflops")] public double GemmSquareGflops { get; init; }
    [JsonPropertyName("forward_matmul_gflop")] public double ForwardMatmulGflop { get; init; }
    public double CeilingTokensPerS { get; init; }

    public double DirectTokensPerS { get; init; }
    public double PlainTokensPerS { get; init; }
    public double NoopHooksTokensPerS { get; init; }
    /// <summary>No-op hooks everywhere except hook_attn_scores and hook_pattern, so attention stays fused.</summary>
    public double NoopHooksFusedAttentionTokensPerS { get; init; }
    public double CacheTokensPerS { get; init; }
    public double DirectSeconds { get; init; }
    public double PlainSeconds { get; init; }
    public double NoopHooksSeconds { get; init; }
    public double NoopHooksFusedAttentionSeconds { get; init; }
    public double CacheSeconds { get; init; }

    /// <summary>Peak resident memory above the start of a plain <c>Run</c> (activations in flight and the logits).</summary>
    public long PlainPeakBytes { get; init; }
    /// <summary>Peak resident memory above the start of a full <c>RunWithCache</c>.</summary>
    public long CachePeakBytes { get; init; }
    /// <summary>Sum of the cached tensors' sizes (numel × element size).</summary>
    public long CachedTensorBytes { get; init; }
    public string MemoryMethod { get; init; } = "";
    /// <summary>Size of the weights of the checkpoint loaded by the load benchmark.</summary>
    public long LoadWeightBytes { get; init; }
    /// <summary>Peak anonymous memory above the start while loading it (the mapped file's page cache excluded).</summary>
    public long LoadPeakBytes { get; init; }
    public double LoadSeconds { get; init; }
    public double LoadPeakOverWeights => (double)LoadPeakBytes / LoadWeightBytes;      // target ≤ 1.2

    // bfloat16: the same model with its weights rounded to bf16, run interleaved with the float32 one.
    [JsonPropertyName("bf16_tokens_per_s")] public double Bf16TokensPerS { get; init; }
    [JsonPropertyName("bf16_seconds")] public double Bf16Seconds { get; init; }
    /// <summary>The median round's bf16 GEMM rate (the better of the two shapes in each round).</summary>
    [JsonPropertyName("bf16_gemm_gflops")] public double Bf16GemmGflops { get; init; }
    [JsonPropertyName("bf16_gemm_model_shape_gflops")] public double Bf16GemmModelShapeGflops { get; init; }
    [JsonPropertyName("bf16_gemm_square_gflops")] public double Bf16GemmSquareGflops { get; init; }
    /// <summary>float32 forward time / bf16 forward time, per round.</summary>
    [JsonPropertyName("bf16_speedup")] public Spread Bf16Speedup { get; init; } = Spread.Of([]);          // target ≥ 1.6
    /// <summary>bf16 GEMM rate / float32 GEMM rate, per round: what the hardware allows.</summary>
    [JsonPropertyName("bf16_gemm_speedup")] public Spread Bf16GemmSpeedup { get; init; } = Spread.Of([]);
    [JsonPropertyName("bf16_over_ceiling")] public Spread Bf16OverCeiling { get; init; } = Spread.Of([]);
    /// <summary>Largest |log-prob difference| between the float32 model and its bf16 copy on the benchmark's tokens.</summary>
    [JsonPropertyName("bf16_max_log_prob_diff")] public double Bf16MaxLogProbDiff { get; init; }
    [JsonPropertyName("bf16_load_weight_bytes")] public long Bf16LoadWeightBytes { get; init; }
    [JsonPropertyName("bf16_load_peak_bytes")] public long Bf16LoadPeakBytes { get; init; }
    [JsonPropertyName("bf16_load_seconds")] public double Bf16LoadSeconds { get; init; }
    [JsonPropertyName("bf16_load_peak_over_weights")] public double Bf16LoadPeakOverWeights => (double)Bf16LoadPeakBytes / Bf16LoadWeightBytes; // target ≤ 1.2

    // Ratios, each in the direction its target is stated: the median of the per-round ratios (min–max beside it).
    public Spread PlainOverDirect { get; init; } = Spread.Of([]);                  // target ≥ 0.95
    public Spread PlainOverCeiling { get; init; } = Spread.Of([]);                 // target ≥ 0.80
    public Spread DirectOverCeiling { get; init; } = Spread.Of([]);
    public Spread NoopHooksTimeRatio { get; init; } = Spread.Of([]);               // target ≤ 1.10
    public Spread NoopHooksFusedAttentionTimeRatio { get; init; } = Spread.Of([]);
    public Spread CacheTimeRatio { get; init; } = Spread.Of([]);                   // target ≤ 1.30
    /// <summary>The memory caching adds over a plain forward: the full cache's peak less the plain forward's peak.</summary>
    public long CacheExtraBytes => CachePeakBytes - PlainPeakBytes;
    public double CacheExtraOverCached => (double)CacheExtraBytes / CachedTensorBytes; // target within 1 ± 0.10
    public double CachePeakOverCached => (double)CachePeakBytes / CachedTensorBytes;

    public string ToJson() => JsonSerializer.Serialize(this, BenchmarkJsonContext.Default.BenchmarkResult);

    /// <summary>A plain-text table: each measurement, then each target with its ratio and whether it was met.</summary>
    public string ToTable()
    {
        var c = CultureInfo.InvariantCulture;
        string Tps(double v) => v.ToString("N0", c) + " tok/s";
        string MiB(long b) => (b / 1048576.0).ToString("N1", c) + " MiB";
        string F(double v, string fmt) => v.ToString(fmt, c);
        var rows = new List<(string, string, string)>
        {
            ("shape", $"{Layers} layers, d_model 768, 12 heads, d_mlp 3072, vocab 50257", ""),
            ("input", $"1 x {SeqLen} tokens, float32, no_grad", ""),
            ("threads / rounds", $"{Threads} / {Repeats} interleaved (medians; ratios: median of the rounds' ratios (min–max))", ""),
            ("hook points", HookPoints.ToString(c), ""),
            ("max |logit diff| plain vs direct", F(MaxAbsDiff, "g3"), ""),
            ("GEMM (MLP shape / square)", $"{F(GemmModelShapeGflops, "F0")} / {F(GemmSquareGflops, "F0")} GFLOP/s", ""),
            ("forward matmul work", F(ForwardMatmulGflop, "F1") + " GFLOP", ""),
            ("(e) GEMM ceiling", Tps(CeilingTokensPerS), F(ForwardMatmulGflop / GemmGflops, "F3") + $" s at the median round's {F(GemmGflops, "F0")} GFLOP/s"),
            ("(b) direct TorchSharp", Tps(DirectTokensPerS), F(DirectSeconds, "F3") + " s"),
            ("(a) HookedTransformer.Run", Tps(PlainTokensPerS), F(PlainSeconds, "F3") + " s"),
            ("(d) no-op hook on every point", Tps(NoopHooksTokensPerS), F(NoopHooksSeconds, "F3") + " s"),
            ("(d') no-op hooks, all but scores/pattern", Tps(NoopHooksFusedAttentionTokensPerS), F(NoopHooksFusedAttentionSeconds, "F3") + " s"),
            ("(c) RunWithCache, every hook", Tps(CacheTokensPerS), F(CacheSeconds, "F3") + " s"),
            ("(f) plain Run peak extra memory", MiB(PlainPeakBytes), ""),
            ("(f) RunWithCache peak extra memory", MiB(CachePeakBytes), ""),
            ("(f) cached tensors' total", MiB(CachedTensorBytes), ""),
            ("(f) cache peak less plain peak", MiB(CacheExtraBytes), MemoryMethod),
            ("(g) checkpoint weights", MiB(LoadWeightBytes), "HF GPT-2 layout, safetensors, memory-mapped"),
            ("(g) peak extra memory while loading", MiB(LoadPeakBytes), F(LoadSeconds, "F2") + " s; RssAnon sampled every 1 ms"),
            ("(h) bf16 GEMM (MLP shape / square)", $"{F(Bf16GemmModelShapeGflops, "F0")} / {F(Bf16GemmSquareGflops, "F0")} GFLOP/s", $"median round {F(Bf16GemmGflops, "F0")} GFLOP/s"),
            ("(h) HookedTransformer.Run, float32", Tps(PlainTokensPerS), F(PlainSeconds, "F3") + " s"),
            ("(h) HookedTransformer.Run, bfloat16", Tps(Bf16TokensPerS), F(Bf16Seconds, "F3") + " s"),
            ("(h) max |log-prob diff| bf16 vs float32", F(Bf16MaxLogProbDiff, "g3"), "same weights rounded to bf16"),
            ("(h) bf16 checkpoint weights", MiB(Bf16LoadWeightBytes), "HF GPT-2 layout, stored BF16, loaded as bf16"),
            ("(h) peak extra memory while loading bf16", MiB(Bf16LoadPeakBytes), F(Bf16LoadSeconds, "F2") + " s"),
        };
        var targets = new List<(string, string, string)>
        {
            ("plain / direct", PlainOverDirect.Format(), Met(PlainOverDirect.Median >= 0.95, ">= 0.95")),
            ("plain / GEMM ceiling", PlainOverCeiling.Format(), Met(PlainOverCeiling.Median >= 0.80, ">= 0.80")),
            ("direct / GEMM ceiling", DirectOverCeiling.Format(), "(for reference)"),
            ("no-op hooks time / plain time", NoopHooksTimeRatio.Format(), Met(NoopHooksTimeRatio.Median <= 1.10, "<= 1.10")),
            ("no-op hooks but scores/pattern time / plain", NoopHooksFusedAttentionTimeRatio.Format(), Met(NoopHooksFusedAttentionTimeRatio.Median <= 1.10, "<= 1.10 (hook machinery alone)")),
            ("cache time / plain time", CacheTimeRatio.Format(), Met(CacheTimeRatio.Median <= 1.30, "<= 1.30")),
            ("cache extra memory / cached bytes", F(CacheExtraOverCached, "F3"), Met(Math.Abs(CacheExtraOverCached - 1) <= 0.10, "within 1 +/- 0.10")),
            ("cache peak memory / cached bytes", F(CachePeakOverCached, "F3"), "(incl. logits and working memory)"),
            ("load peak memory / weights", F(LoadPeakOverWeights, "F3"), Met(LoadPeakOverWeights <= 1.2, "<= 1.20")),
            ("bf16 GEMM rate / float32 GEMM rate", Bf16GemmSpeedup.Format(), "(what the hardware allows)"),
            ("bf16 forward tokens/s / float32", Bf16Speedup.Format(), Met(Bf16Speedup.Median >= 1.6, ">= 1.6")),
            ("bf16 forward / bf16 GEMM ceiling", Bf16OverCeiling.Format(), "(for reference)"),
            ("bf16 load peak memory / bf16 weights", F(Bf16LoadPeakOverWeights, "F3"), Met(Bf16LoadPeakOverWeights <= 1.2, "<= 1.20")),
        };

        var text = new StringBuilder();
        Append(text, ("measurement", "value", "note"), rows);
        text.AppendLine();
        Append(text, ("target", "ratio", "status"), targets);
        return text.ToString();
    }

    static string Met(bool met, string target) => (met ? "met " : "MISSED ") + target;

    static void Append(StringBuilder text, (string, string, string) header, List<(string A, string B, string C)> rows)
    {
        int a = Math.Max(header.Item1.Length, rows.Max(r => r.A.Length)), b = Math.Max(header.Item2.Length, rows.Max(r => r.B.Length));
        text.AppendLine($"{header.Item1.PadRight(a)}  {header.Item2.PadRight(b)}  {header.Item3}".TrimEnd());
        text.AppendLine($"{new string('-', a)}  {new string('-', b)}  {new string('-', Math.Max(header.Item3.Length, rows.Max(r => r.C.Length)))}");
        foreach (var (x, y, z) in rows) text.AppendLine($"{x.PadRight(a)}  {y.PadRight(b)}  {z}".TrimEnd());
    }
}
