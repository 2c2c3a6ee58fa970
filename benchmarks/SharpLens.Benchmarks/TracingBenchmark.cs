using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Tracing;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Median seconds of each variant, measured interleaved in one run, and the ratios the targets are stated in.</summary>
public sealed record TracingTimings(int Layers, int Positions, int Repeats, double PlainSeconds, double TraceSaveOneSeconds,
    double HooksWriteEveryLayerSeconds, double TraceWriteEveryLayerSeconds, double HooksAddEveryLayerSeconds, double TraceAddEveryLayerSeconds)
{
    public double SaveOneRatio => TraceSaveOneSeconds / PlainSeconds;
    public double WriteEveryLayerRatio => TraceWriteEveryLayerSeconds / HooksWriteEveryLayerSeconds;
    public double AddEveryLayerRatio => TraceAddEveryLayerSeconds / HooksAddEveryLayerSeconds;

    public string ToTable() => string.Join(Environment.NewLine,
        $"Tracing overhead, GPT-2-small-shaped model (random weights), {Layers} layers, 1 × {Positions} tokens, median of {Repeats} interleaved runs:",
        $"  {"variant",-58} {"ms",8}",
        $"  {"plain forward (Run)",-58} {PlainSeconds * 1e3,8:0.0}",
        $"  {"trace saving blocks.{L/2}.hook_resid_post",-58} {TraceSaveOneSeconds * 1e3,8:0.0}   {SaveOneRatio:0.000}× plain (target ≤ 1.05)",
        $"  {"hooks: resid_post[:, -1] += v at every layer",-58} {HooksWriteEveryLayerSeconds * 1e3,8:0.0}",
        $"  {"trace: Blocks[l].Output[.., ^1] += v at every layer",-58} {TraceWriteEveryLayerSeconds * 1e3,8:0.0}   {WriteEveryLayerRatio:0.000}× hooks (target ≤ 1)",
        $"  {"hooks: resid_post + v at every layer",-58} {HooksAddEveryLayerSeconds * 1e3,8:0.0}",
        $"  {"trace: Blocks[l].Output += v at every layer",-58} {TraceAddEveryLayerSeconds * 1e3,8:0.0}   {AddEveryLayerRatio:0.000}× hooks (target ≤ 1)");

    public string ToJson() => System.Text.Json.JsonSerializer.Serialize(this);
}

/// <summary>
/// What tracing costs over the hook API: a trace that saves one activation against a plain forward, and a trace that
/// writes at every layer against hooks doing the same writes. Each repetition runs every variant once, in turn, so
/// the machine's noise falls on all alike; the medians are compared.
/// </summary>
public static class TracingBenchmark
{
    public static TracingTimings Run(int layers = 12, int positions = 64, int repeats = 15)
    {
        var config = new ModelConfig
        {
            DModel = 768, NLayers = layers, NHeads = 12, DHead = 64, DMlp = 3072, DVocab = 50257, NCtx = 1024,
            ActFn = Activation.GeluNew, ModelName = $"gpt2-small-shaped-{layers}l",
        };
        using var model = new HookedTransformer(config, seed: 0);
        var tokens = randint(0, config.DVocab, [1, positions], generator: new Generator(3), dtype: ScalarType.Int64);
        var v = randn(config.DModel, generator: new Generator(4)) * 0.1;
        string saved = $"blocks.{layers / 2}.hook_resid_post";

        void Plain() { using var _ = no_grad(); model.Run(tokens).Dispose(); }
        void TraceSaveOne()
        {
            var t = model.Trace(tokens);
            t[saved].Save();
            t.Run().Dispose();
        }
        void HooksWrite()
        {
            using var _ = no_grad();
            model.RunWithHooks(tokens, Enumerable.Range(0, layers).Select(l => ($"blocks.{l}.hook_resid_post",
                (HookFunction)((a, _) => { var c = a.clone(); c[.., -1] += v; return c; })))).Dispose();
        }
        void TraceWrite()
        {
            var t = model.Trace(tokens);
            for (int l = 0; l < layers; l++) t.Blocks[l].Output[.., ^1] += v;
            t.Run().Dispose();
        }
        void HooksAdd()
        {
            using var _ = no_grad();
            model.RunWithHooks(tokens, Enumerable.Range(0, layers).Select(l => ($"blocks.{l}.hook_resid_post", (HookFunction)((a, _) => a + v)))).Dispose();
        }
        void TraceAdd()
        {
            var t = model.Trace(tokens);
            for (int l = 0; l < layers; l++) t.Blocks[l].Output += v;
            t.Run().Dispose();
        }

        (string, Action)[] variants = [("plain", Plain), ("trace_save_one", TraceSaveOne), ("hooks_write", HooksWrite),
            ("trace_write", TraceWrite), ("hooks_add", HooksAdd), ("trace_add", TraceAdd)];
        foreach (var (_, run) in variants) run(); // a first warm-up of its own: the trace's one-off hook-order measurement
        var timings = Interleaved.Measure(variants, repeats);
        var m = variants.Select(v => timings.MedianSeconds(v.Item1)).ToArray();
        return new TracingTimings(layers, positions, repeats, m[0], m[1], m[2], m[3], m[4], m[5]);
    }
}
