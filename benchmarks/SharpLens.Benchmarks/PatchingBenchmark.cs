using System.Diagnostics;
using SharpLens.Models;
using SharpLens.Techniques.Patching;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Seconds for one full sweep, and the forward passes it took.</summary>
public sealed record PatchingTimings(int Layers, int Positions, double BatchedSeconds, int BatchedPasses, double PerCellSeconds, int PerCellPasses,
    double AttributionSeconds, double MaxDifference)
{
    public string ToTable() => string.Join(Environment.NewLine,
        $"Full resid_pre sweep, GPT-2-small-shaped model (random weights), {Layers} layers × {Positions} positions = {Layers * Positions} cells:",
        $"  {"variant",-36} {"seconds",9} {"forward passes",15}",
        $"  {"activation patching, batched",-36} {BatchedSeconds,9:0.00} {BatchedPasses,15}",
        $"  {"activation patching, one per cell",-36} {PerCellSeconds,9:0.00} {PerCellPasses,15}",
        $"  {"attribution patching (2 fwd + 1 bwd)",-36} {AttributionSeconds,9:0.00} {2,15}",
        $"  batched is {PerCellSeconds / BatchedSeconds:0.0}× faster than one pass per cell; attribution {BatchedSeconds / AttributionSeconds:0.0}× faster than batched",
        $"  largest |batched − per-cell| difference: {MaxDifference:0.0e+00}");

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this, PatchingJsonContext.Default.PatchingTimings);
}

/// <summary>
/// A full resid_pre sweep (every layer × position) on a GPT-2-small-shaped model with random weights: batched activation
/// patching against one forward pass per cell, and attribution patching against both.
/// </summary>
public static class PatchingBenchmark
{
    public static PatchingTimings Run(int layers = 12, int positions = 16, long memoryBudgetBytes = 1L << 30)
    {
        var config = new ModelConfig
        {
            DModel = 768, NLayers = layers, NHeads = 12, DHead = 64, DMlp = 3072, DVocab = 50257, NCtx = 1024,
            ActFn = Activation.GeluNew, ModelName = $"gpt2-small-shaped-{layers}l",
        };
        using var model = new HookedTransformer(config, seed: 0);
        var generator = new Generator(3);
        var clean = randint(0, config.DVocab, [1, positions], generator: generator, dtype: ScalarType.Int64);
        var corrupted = clean.clone();
        corrupted[0, positions / 2] = (clean[0, positions / 2] + 1) % config.DVocab;
        using var pairs = new PromptPairs(clean, corrupted, tensor(new long[] { 11 }), tensor(new long[] { 12 }));

        ActivationPatching.Sweep(model, pairs, "resid_pre", SweepBy.Layer).Dispose(); // warm-up
        var clock = Stopwatch.StartNew();
        using var batched = ActivationPatching.Sweep(model, pairs, "resid_pre", options: new PatchingOptions { MemoryBudgetBytes = memoryBudgetBytes });
        double batchedSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var perCell = ActivationPatching.Sweep(model, pairs, "resid_pre", options: new PatchingOptions { MaxBatchRows = 1 });
        double perCellSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        using var attribution = AttributionPatching.Sweep(model, pairs, "resid_pre");
        double attributionSeconds = clock.Elapsed.TotalSeconds;
        double difference = (batched.Values - perCell.Values).abs().max().item<float>();
        return new PatchingTimings(layers, positions, batchedSeconds, batched.ForwardPasses, perCellSeconds, perCell.ForwardPasses, attributionSeconds, difference);
    }
}
