using System.Diagnostics;
using SharpLens.Models;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>What to run: GPT-2-small's shape by default; fewer layers or a shorter sequence for a quick look.</summary>
public sealed record BenchmarkOptions(int SeqLen = 1024, int Layers = 12, int Repeats = 5, int? Threads = null, long Seed = 0)
{
    public BenchmarkOptions Validated()
    {
        if (SeqLen is < 1 or > 1024) throw new ArgumentOutOfRangeException(nameof(SeqLen), SeqLen, "--seq-len must be in [1, 1024] (GPT-2's n_ctx).");
        if (Layers < 1) throw new ArgumentOutOfRangeException(nameof(Layers), Layers, "--layers must be at least 1.");
        if (Repeats < 1) throw new ArgumentOutOfRangeException(nameof(Repeats), Repeats, "--repeats must be at least 1.");
        if (Threads is < 1) throw new ArgumentOutOfRangeException(nameof(Threads), Threads, "--threads must be at least 1.");
        return this;
    }
}

/// <summary>
/// Forward throughput of <see cref="HookedTransformer"/> against the same forward written directly on TorchSharp
/// (<see cref="DirectGpt2"/>) and against the matrix-multiply bound, plus the memory a full activation cache takes.
/// </summary>
/// <remarks>
/// The machine may be shared, so the variants and the GEMM probe are timed interleaved (<see cref="Interleaved"/>):
/// each round runs every one once, in a rotating order, and each ratio is the median of the per-round ratios (min–max
/// beside it), so a slow spell that hits one round hits every variant in it. Rates are medians of the rounds.
/// </remarks>
public static class ForwardBenchmark
{
    /// <summary>GPT-2 small: 12 layers, d_model 768, 12 heads of 64, d_mlp 3072, vocab 50257, n_ctx 1024, gelu_new, LN.</summary>
    public static ModelConfig Gpt2SmallShape(int layers = 12) => new()
    {
        ModelName = "gpt2-small-shaped",
        DModel = 768, NLayers = layers, NHeads = 12, DHead = 64, DMlp = 3072, DVocab = 50257, NCtx = 1024,
        ActFn = Activation.GeluNew, NormalizationType = Normalization.LN, PositionalEmbeddingType = PositionalEmbedding.Learned,
    };

    public static BenchmarkResult Run(BenchmarkOptions options, TextWriter? progress = null)
    {
        options = options.Validated();
        TorchNative.EnsureLoaded(); // before the first torch call below (set_num_threads)
        if (options.Threads is int threads) UncaughtNativeCalls.SetNumThreads(threads);
        using var _ = no_grad();
        var cfg = Gpt2SmallShape(options.Layers);
        using var model = new HookedTransformer(cfg, seed: options.Seed);
        using var direct = new DirectGpt2(model);
        // The same random weights rounded to bfloat16: weights, activations and logits all bf16 (norms and softmax
        // accumulate in float32 inside libtorch's bf16 kernels).
        using var bf16 = new HookedTransformer(cfg, new ModelOptions("cpu", ScalarType.BFloat16), seed: options.Seed);
        using var tokens = randint(0, cfg.DVocab, [1, options.SeqLen], dtype: ScalarType.Int64, generator: new Generator((ulong)options.Seed + 1));

        progress?.WriteLine($"GPT-2-small shape, {cfg.NLayers} layers, 1x{options.SeqLen} tokens, {get_num_threads()} threads, {options.Repeats} rounds");

        // Same weights, same tokens: the baseline must compute the same logits (this also warms both paths up).
        double maxAbsDiff;
        using (var a = model.Run(tokens))
        using (var b = direct.Forward(tokens))
            maxAbsDiff = (a - b).abs().max().item<float>();
        progress?.WriteLine($"max |logits(HookedTransformer) - logits(direct)| = {maxAbsDiff:g3}");
        double bf16LogProbDiff;
        using (var a = model.Run(tokens).log_softmax(-1))
        using (var b = bf16.Run(tokens).to(ScalarType.Float32).log_softmax(-1))
            bf16LogProbDiff = (a - b).abs().max().item<float>();
        progress?.WriteLine($"max |log-probs(float32) - log-probs(bfloat16)| = {bf16LogProbDiff:g3}");

        var variants = new (string Name, Action Forward)[]
        {
            ("direct", () => direct.Forward(tokens).Dispose()),
            ("plain", () => model.Run(tokens).Dispose()),
            ("noop_hooks", () =>
            {
                using var hooks = model.AddHook(_ => true, (_, _) => null);
                model.Run(tokens).Dispose();
            }),
            // The same, minus the two hooks that by design switch attention to the explicit path (see Attention):
            // what the hook machinery itself costs.
            ("noop_hooks_fused_attention", () =>
            {
                using var hooks = model.AddHook(n => !n.EndsWith(".hook_pattern", StringComparison.Ordinal) && !n.EndsWith(".hook_attn_scores", StringComparison.Ordinal), (_, _) => null);
                model.Run(tokens).Dispose();
            }),
            ("cache", () =>
            {
                var (logits, cache) = model.RunWithCache(tokens);
                logits.Dispose();
                cache.Dispose();
            }),
            ("bf16", () => bf16.Run(tokens).Dispose()),
        };
        var gemm = new GemmProbe(options.SeqLen);
        var gemmBf16 = new GemmProbe(options.SeqLen, ScalarType.BFloat16);
        double flops = ForwardMatmulFlops(cfg, options.SeqLen);
        var timings = Interleaved.Measure([.. variants, ("gemm", () => gemm.Measure(3)), ("gemm_bf16", () => gemmBf16.Measure(3))], options.Repeats, progress);
        double CeilingSeconds(int round) => flops / (gemm.RoundGflops[round + 1] * 1e9); // [0] is the warm-up's
        var (plainPeak, method) = PeakMemory.Measure(() => model.Run(tokens).Dispose());
        long cachedBytes = 0;
        var (cachePeak, _) = PeakMemory.Measure(() =>
        {
            var (logits, cache) = model.RunWithCache(tokens);
            cachedBytes = cache.TotalBytes;
            logits.Dispose();
            cache.Dispose();
        });

        var load = LoadBenchmark.Run(cfg, progress);
        var loadBf16 = LoadBenchmark.Run(cfg, progress, ScalarType.BFloat16);

        double TokensPerS(string name) => options.SeqLen / timings.MedianSeconds(name);
        return new BenchmarkResult
        {
            SeqLen = options.SeqLen,
            Layers = cfg.NLayers,
            Threads = get_num_threads(),
            Repeats = options.Repeats,
            HookPoints = model.HookDict.Count,
            MaxAbsDiff = maxAbsDiff,
            GemmGflops = Spread.Of(gemm.RoundGflops.Skip(1)).Median,
            GemmModelShapeGflops = gemm.ModelShapeGflops,
            GemmSquareGflops = gemm.SquareGflops,
            ForwardMatmulGflop = flops / 1e9,
            CeilingTokensPerS = options.SeqLen / (flops / (Spread.Of(gemm.RoundGflops.Skip(1)).Median * 1e9)),
            DirectTokensPerS = TokensPerS("direct"),
            PlainTokensPerS = TokensPerS("plain"),
            NoopHooksTokensPerS = TokensPerS("noop_hooks"),
            NoopHooksFusedAttentionTokensPerS = TokensPerS("noop_hooks_fused_attention"),
            CacheTokensPerS = TokensPerS("cache"),
            DirectSeconds = timings.MedianSeconds("direct"),
            PlainSeconds = timings.MedianSeconds("plain"),
            NoopHooksSeconds = timings.MedianSeconds("noop_hooks"),
            NoopHooksFusedAttentionSeconds = timings.MedianSeconds("noop_hooks_fused_attention"),
            CacheSeconds = timings.MedianSeconds("cache"),
            PlainOverDirect = timings.TimeRatio("direct", "plain"),
            PlainOverCeiling = timings.Ratio(CeilingSeconds, "plain"),
            DirectOverCeiling = timings.Ratio(CeilingSeconds, "direct"),
            NoopHooksTimeRatio = timings.TimeRatio("noop_hooks", "plain"),
            NoopHooksFusedAttentionTimeRatio = timings.TimeRatio("noop_hooks_fused_attention", "plain"),
            CacheTimeRatio = timings.TimeRatio("cache", "plain"),
            PlainPeakBytes = plainPeak,
            CachePeakBytes = cachePeak,
            CachedTensorBytes = cachedBytes,
            MemoryMethod = method,
            LoadWeightBytes = load.WeightBytes,
            LoadPeakBytes = load.PeakExtraBytes,
            LoadSeconds = load.Seconds,
            Bf16TokensPerS = TokensPerS("bf16"),
            Bf16Seconds = timings.MedianSeconds("bf16"),
            Bf16GemmGflops = Spread.Of(gemmBf16.RoundGflops.Skip(1)).Median,
            Bf16GemmModelShapeGflops = gemmBf16.ModelShapeGflops,
            Bf16GemmSquareGflops = gemmBf16.SquareGflops,
            Bf16Speedup = timings.TimeRatio("plain", "bf16"),
            Bf16GemmSpeedup = Spread.Of(gemmBf16.RoundGflops.Skip(1).Zip(gemm.RoundGflops.Skip(1), (b, f) => b / f)),
            Bf16OverCeiling = timings.Ratio(round => flops / (gemmBf16.RoundGflops[round + 1] * 1e9), "bf16"),
            Bf16MaxLogProbDiff = bf16LogProbDiff,
            Bf16LoadWeightBytes = loadBf16.WeightBytes,
            Bf16LoadPeakBytes = loadBf16.PeakExtraBytes,
            Bf16LoadSeconds = loadBf16.Seconds,
        };
    }

    /// <summary>
    /// Multiply-add FLOPs (2 per multiply-add) of every matrix product in one forward: q/k/v, attention QK and PV
    /// (counted over the whole T×T square, the usual convention, though a causal kernel may skip the masked half),
    /// the output projection, the MLP and the unembedding. Embedding lookups, norms and activations are not counted.
    /// </summary>
    public static double ForwardMatmulFlops(ModelConfig cfg, long T)
    {
        double d = cfg.DModel, attnWidth = (double)cfg.NHeads * cfg.DHead;
        double perLayer = 2 * T * d * 3 * attnWidth       // q, k, v
                        + 2 * 2 * T * T * attnWidth       // QKᵀ and pattern·V
                        + 2 * T * attnWidth * d           // W_O
                        + (cfg.AttnOnly ? 0 : 2 * 2 * T * d * cfg.DMlp); // W_in, W_out
        return cfg.NLayers * perLayer + 2 * T * d * cfg.DVocab;
    }

    static double Seconds(Action action)
    {
        var watch = Stopwatch.StartNew();
        action();
        return watch.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// libtorch's GEMM rate (fp32, or the dtype given) on the MLP's shape and on a square matrix: each probe's better rate (the round's
    /// ceiling), and the best of every probe.
    /// </summary>
    sealed class GemmProbe(long seqLen, ScalarType dtype = ScalarType.Float32)
    {
        public double ModelShapeGflops { get; private set; }
        public double SquareGflops { get; private set; }
        public double BestGflops => Math.Max(ModelShapeGflops, SquareGflops);
        public List<double> RoundGflops { get; } = [];

        public void Measure(int times)
        {
            using var scope = NewDisposeScope();
            double modelShape = Rate(Math.Max(seqLen, 256), 768, 3072, times), square = Rate(2048, 2048, 2048, times);
            (ModelShapeGflops, SquareGflops) = (Math.Max(ModelShapeGflops, modelShape), Math.Max(SquareGflops, square));
            RoundGflops.Add(Math.Max(modelShape, square));
        }

        double Rate(long m, long k, long n, int times)
        {
            var a = randn(m, k).to(dtype);
            var b = randn(k, n).to(dtype);
            a.mm(b).Dispose(); // warm-up
            double best = double.PositiveInfinity;
            for (int i = 0; i < times; i++) best = Math.Min(best, Seconds(() => a.mm(b).Dispose()));
            return 2.0 * m * k * n / best / 1e9;
        }
    }
}
