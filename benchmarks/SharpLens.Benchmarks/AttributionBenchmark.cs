using System.Diagnostics;
using SharpLens.Attribution;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>One prompt length: graph time and peak memory against one plain forward + backward of the same model.</summary>
public sealed record AttributionBenchmarkRow(int Tokens, int ActiveFeatures, int FeatureNodes, int BackwardPasses,
    double GraphSeconds, double ForwardBackwardSeconds, long GraphPeakBytes, long ForwardBackwardPeakBytes, long FormulaBytes)
{
    public double TimeRatio => GraphSeconds / ForwardBackwardSeconds;
    public double MemoryRatio => (double)GraphPeakBytes / Math.Max(1, ForwardBackwardPeakBytes);
}

/// <summary>
/// `dotnet run --project benchmarks/SharpLens.Benchmarks -c Release -- --graph`: attribution graphs of random prompts of
/// 16, 64 and 256 tokens on a GPT-2-layout model (random weights) with random ReLU per-layer transcoders.
/// </summary>
public static class AttributionBenchmark
{
    public static IReadOnlyList<AttributionBenchmarkRow> Run(int[] lengths, int dModel = 128, int layers = 4, int dTc = 512, int batch = 32,
        int maxFeatureNodes = 128, int threads = 1, TextWriter? log = null)
    {
        UncaughtNativeCalls.SetNumThreads(threads);
        var cfg = new ModelConfig
        {
            DModel = dModel, NLayers = layers, NHeads = 4, DHead = dModel / 4, DMlp = 4 * dModel, DVocab = 1000, NCtx = 512,
            ActFn = Activation.GeluNew, ModelName = "bench-gpt2-layout",
        };
        using var model = new HookedTransformer(cfg, seed: 1);
        var g = new Generator(2);
        using var set = new TranscoderSet(false, torch.randn(layers, dTc, dModel, generator: g) / Math.Sqrt(dModel),
            -2.0 * torch.ones(layers, dTc), torch.zeros(layers, dModel),
            [.. Enumerable.Range(0, layers).Select(_ => 0.1 * torch.randn(dTc, 1, dModel, generator: g) / Math.Sqrt(dTc))],
            TranscoderActivation.Relu, null, 0, null, "hook_resid_mid", "hook_mlp_out", "bench");
        return Run(model, set, lengths, batch, maxFeatureNodes, log, g);
    }

    /// <summary>
    /// The same measurement on a given model and transcoder set (`--graph --model DIR --transcoders DIR`): prompts of
    /// the first tokens of <paramref name="text"/> (real text, e.g. a Brown validation document) after BOS, or of random
    /// token ids when it is null; lengths above the model's context are left out.
    /// </summary>
    public static IReadOnlyList<AttributionBenchmarkRow> Run(HookedTransformer model, TranscoderSet set, int[] lengths, int batch = 32,
        int maxFeatureNodes = 128, TextWriter? log = null, Generator? generator = null, IReadOnlyList<int>? text = null)
    {
        var g = generator ?? new Generator(2);
        var cfg = model.Config;
        int layers = cfg.NLayers;
        var rm = new ReplacementModel(model, set);
        var rows = new List<AttributionBenchmarkRow>();
        using (var warm = Attributor.Attribute(rm, torch.tensor(new long[] { cfg.BosTokenId ?? 0, 2, 3 }), new AttributionOptions { BatchSize = 4, MaxFeatureNodes = 4 })) { } // JIT and allocator warm-up
        foreach (int n in lengths.Where(n => n <= cfg.NCtx))
        {
            var tokens = text is { } t && t.Count >= n - 1
                ? torch.tensor(t.Take(n - 1).Prepend(cfg.BosTokenId ?? 0).Select(i => (long)i).ToArray())
                : torch.randint(0, cfg.DVocab, [n], generator: g, dtype: ScalarType.Int64);
            if (cfg.BosTokenId is int bos) tokens[0] = bos; // the prompt as attributed: BOS first, so no token is added
            var clock = Stopwatch.StartNew();
            double fb = 0;
            for (int warm = 0; warm < 2; warm++)
                using (var s = torch.NewDisposeScope()) using (torch.enable_grad()) model.Run(tokens.unsqueeze(0)).sum().backward();
            var (fbPeak, _) = PeakMemory.Measure(() =>
            {
                using var scope = torch.NewDisposeScope();
                clock.Restart();
                using var _g = torch.enable_grad();
                var logits = model.Run(tokens.unsqueeze(0));
                logits.sum().backward();
                fb = clock.Elapsed.TotalSeconds;
                foreach (var p in model.parameters()) p.grad?.zero_();
            });
            AttributionGraph? graph = null;
            double seconds = 0;
            var (peak, _) = PeakMemory.Measure(() =>
            {
                clock.Restart();
                graph = Attributor.Attribute(rm, tokens, new AttributionOptions { BatchSize = batch, MaxFeatureNodes = maxFeatureNodes });
                seconds = clock.Elapsed.TotalSeconds;
            });
            using (graph)
            {
                int nActive = (int)graph!.ActiveFeatures.shape[0];
                int nf = graph.NFeatures;
                int passes = (graph.NLogits + batch - 1) / batch + (nf + batch - 1) / batch;
                long total = nActive + (layers + 1) * (long)graph.NPos + graph.NLogits;
                long formula = 4L * (nf + graph.NLogits) * total + 4L * graph.NNodes * graph.NNodes;
                rows.Add(new AttributionBenchmarkRow(graph.NPos, nActive, nf, passes, seconds, fb, peak, fbPeak, formula));
                log?.WriteLine($"{graph.NPos} tokens: {nActive} active, {nf} nodes, {seconds:0.00} s graph vs {fb:0.000} s fwd+bwd, peak {peak / 1e6:0.0} MB vs {fbPeak / 1e6:0.0} MB, formula {formula / 1e6:0.0} MB");
            }
        }
        return rows;
    }
}
