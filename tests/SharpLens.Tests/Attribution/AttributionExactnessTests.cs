using SharpLens.Attribution;
using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Attribution;

/// <summary>
/// circuit-tracer's own check (tests/test_attributions_gemma.py), ported: freeze attention patterns, norm scales and MLP
/// outputs everywhere, add one source node's vector where it lives, run again, and the change in every feature's
/// pre-activation and every demeaned target logit must be that node's adjacency column.
/// </summary>
public class AttributionExactnessTests
{
    public static TheoryData<string> Kinds => new() { "plt-relu", "plt-jumprelu-skip-ln2", "clt-relu", "plt-topk" };

    internal static (HookedTransformer Model, TranscoderSet Set) Build(string kind, ScalarType dtype = ScalarType.Float32)
    {
        var model = TestModels.RandomModel(TestModels.Tiny() with { NLayers = 3, DVocab = 40 }, seed: 11);
        var set = kind switch
        {
            "plt-relu" => RandomTranscoders.Make(3, 32, 12, crossLayer: false),
            "plt-jumprelu-skip-ln2" => RandomTranscoders.Make(3, 32, 12, crossLayer: false, TranscoderActivation.JumpRelu, skip: true, input: "ln2.hook_normalized"),
            "clt-relu" => RandomTranscoders.Make(3, 32, 12, crossLayer: true),
            "plt-topk" => RandomTranscoders.Make(3, 32, 12, crossLayer: false, TranscoderActivation.TopK, k: 4),
            _ => throw new ArgumentException(kind),
        };
        if (dtype != ScalarType.Float32) { model.MoveTo("cpu", dtype); set.To(dtype); }
        return (model, set);
    }

    static readonly long[] Prompt = [5, 17, 3, 29, 11];

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Adding_a_source_vector_changes_every_target_by_its_adjacency_column(string kind)
    {
        Check(kind, ScalarType.Float32, featAtol: 1e-3, featRtol: 1e-3, logitAtol: 1e-5, logitRtol: 1e-3);
    }

    /// <summary>In float64 the only error left is circuit-tracer's float32 adjacency matrix: a relative 2⁻²⁴ ≈ 6e-8.</summary>
    [Fact]
    public void Float64_is_exact_to_the_float32_storage_of_the_adjacency()
    {
        Check("clt-relu", ScalarType.Float64, featAtol: 1e-9, featRtol: 1e-7, logitAtol: 1e-9, logitRtol: 1e-7);
    }

    static void Check(string kind, ScalarType dtype, double featAtol, double featRtol, double logitAtol, double logitRtol)
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = Build(kind, dtype);
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        using var graph = Attributor.Attribute(rm, torch.tensor(Prompt), new AttributionOptions { BatchSize = 64, MaxNLogits = 5, DesiredLogitProb = 0.99 });
        var tokens = graph.InputTokens;
        using var state = rm.Run(tokens);
        Assert.True(graph.NFeatures > 10, $"only {graph.NFeatures} active features");
        Assert.True(graph.NLogits >= 2);
        var adjacency = graph.AdjacencyMatrix.to(ScalarType.Float64);
        int nPos = graph.NPos;

        // The selected features' (layer, pos, feature) as flat indices into a [n_layers, pos, d_transcoder] tensor.
        var chosen = graph.ActiveFeatures.index_select(0, graph.SelectedFeatures);
        var flat = (chosen[.., 0] * nPos + chosen[.., 1]) * set.DTranscoder + chosen[.., 2];
        var logitIds = torch.tensor(graph.LogitTargets);
        using var frozen = new Frozen(rm, state);
        var (basePre, baseLogits) = frozen.Run(null);
        double worstFeature = 0, worstLogit = 0;
        // circuit-tracer samples its columns too: here every token and last-position error column and every 5th other one.
        var sources = Enumerable.Range(0, graph.LogitStart)
            .Where(s => s >= graph.TokenStart || (s >= graph.ErrorStart && (s - graph.ErrorStart) % nPos == nPos - 1) || s % 5 == 0).ToList();
        foreach (int s in sources)
        {
            using var colScope = torch.NewDisposeScope();
            var (pre, logits) = frozen.Run(SourceVector(rm, graph, state, s));
            // Features: the change of every selected feature's pre-activation.
            var actual = (pre - basePre).to(ScalarType.Float64).flatten().index_select(0, flat);
            var predicted = adjacency[..graph.NFeatures, s];
            var excess = (actual - predicted).abs() - (featAtol + featRtol * predicted.abs());
            worstFeature = Math.Max(worstFeature, (actual - predicted).abs().max().item<double>());
            int bad = (int)excess.argmax().item<long>();
            Assert.True(excess.max().item<double>() <= 0,
                $"{kind}: feature node {bad} {graph.FeatureOf(bad)} from source {s}: change {actual[bad].item<double>()} but adjacency {predicted[bad].item<double>()}");
            // Logits: the demeaned logit, logit_t − mean(logits), at the last position.
            var dLogits = (logits - baseLogits).to(ScalarType.Float64);
            var demeaned = (dLogits - dLogits.mean()).index_select(0, logitIds);
            var predictedLogits = adjacency[graph.LogitStart.., s];
            var logitExcess = (demeaned - predictedLogits).abs() - (logitAtol + logitRtol * predictedLogits.abs());
            worstLogit = Math.Max(worstLogit, (demeaned - predictedLogits).abs().max().item<double>());
            Assert.True(logitExcess.max().item<double>() <= 0,
                $"{kind}: a logit from source {s}: changes [{string.Join(", ", demeaned.data<double>().ToArray())}] but adjacency [{string.Join(", ", predictedLogits.data<double>().ToArray())}]");
        }
        Assert.True(adjacency.abs().sum().item<double>() > 0);
        Console.WriteLine($"{kind} {dtype}: {sources.Count} of {graph.LogitStart} source columns, worst feature |Δ − A| {worstFeature:E2}, worst logit {worstLogit:E2}");
    }

    /// <summary>Where a source node's vector is added: (hook, position, vector) for embeddings, or per MLP output layer.</summary>
    internal sealed record Addition(int? EmbedPos, Tensor? EmbedVec, Tensor? MlpDelta); // MlpDelta [n_layers, pos, d_model]

    static Addition SourceVector(ReplacementModel rm, AttributionGraph g, PromptState state, int s)
    {
        var tc = rm.Transcoders;
        int nPos = g.NPos;
        if (s < g.NFeatures)
        {
            var (l, p, f) = g.FeatureOf(s);
            double a = state.Activations[l, p, f].to(ScalarType.Float64).item<double>();
            var delta = torch.zeros(rm.NLayers, nPos, tc.DModel, dtype: tc.DType);
            var (first, count) = tc.Outputs(l);
            for (int j = 0; j < count; j++) delta[first + j, p] = a * tc.W_dec[l][f, j];
            return new Addition(null, null, delta);
        }
        if (s < g.TokenStart)
        {
            int l = (s - g.ErrorStart) / nPos, p = (s - g.ErrorStart) % nPos;
            var delta = torch.zeros(rm.NLayers, nPos, tc.DModel, dtype: tc.DType);
            delta[l, p] = state.Errors[l, p];
            return new Addition(null, null, delta);
        }
        int pos = s - g.TokenStart;
        return new Addition(pos, rm.Model.embed.W_E[g.InputTokens[pos]].detach(), null);
    }

    /// <summary>
    /// The model with every attention pattern, norm scale and MLP output frozen at its value on the prompt (an MLP output
    /// moves only by its skip path), plus an addition; returns every layer's pre-activations and the last logits.
    /// </summary>
    internal sealed class Frozen(ReplacementModel rm, PromptState state) : IDisposable
    {
        readonly List<string> _names = [.. rm.Model.HookDict.Keys.Where(n => n.EndsWith(".hook_pattern") || n.EndsWith(".hook_scale"))];
        readonly ActivationCache _cache = rm.Model.RunWithCache(state.Tokens.unsqueeze(0), rm.Model.HookDict.Keys.Where(n => n.EndsWith(".hook_pattern") || n.EndsWith(".hook_scale")).ToList()).Cache;

        public (Tensor Pre, Tensor LastLogits) Run(Addition? add)
        {
            var model = rm.Model;
            var tc = rm.Transcoders;
            using var _ = torch.no_grad();
            var inputs = new Tensor[rm.NLayers];
            var hooks = new List<(string, HookFunction)>();
            foreach (var name in _names) hooks.Add((name, (a, _) => _cache[name].clone()));
            if (add?.EmbedVec is { } ev)
                hooks.Add(("hook_embed", (a, _) => { var b = a.clone(); b[0, add.EmbedPos!.Value] += ev.to(a.dtype); return b; }));
            for (int layer = 0; layer < rm.NLayers; layer++)
            {
                int l = layer;
                hooks.Add((rm.InputHook(l), (a, _) => { inputs[l] = a[0].clone().DetachFromDisposeScope(); return null; }));
                hooks.Add((rm.OutputHook(l), (y, _) =>
                {
                    var frozen = state.Outputs[l] + tc.SkipOf(l, inputs[l].to(tc.DType)) - tc.SkipOf(l, state.Inputs[l]);
                    if (add?.MlpDelta is { } d) frozen = frozen + d[l];
                    return frozen.unsqueeze(0).to(y.dtype);
                }));
            }
            var logits = model.RunWithHooks(state.Tokens.unsqueeze(0), hooks);
            var pre = torch.stack(Enumerable.Range(0, rm.NLayers).Select(l => tc.PreActivations(l, inputs[l].to(tc.DType))));
            foreach (var t in inputs) t.Dispose();
            return (pre, logits[0, -1]);
        }

        public void Dispose() => _cache.Dispose();
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public void Reconstruction_plus_error_is_the_mlp_output_and_replacement_logits_are_the_models(string kind)
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = Build(kind);
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        var tokens = rm.EnsureTokenized(torch.tensor(Prompt));
        using var state = rm.Run(tokens);
        // Position 0 (BOS) has its error zeroed as circuit-tracer does; every other position is exact.
        var sum = state.Reconstructions + state.Errors;
        Assert.True((sum[.., 1..] - state.Outputs[.., 1..]).abs().max().item<float>() < 1e-5f);
        Assert.True(state.Errors[.., 0].abs().max().item<float>() == 0);
        // The replacement model's forward (frozen attention, frozen scales, skip + (y − skip).detach()) gives the model's logits.
        var replaced = rm.ReplacementLogits(tokens);
        var original = model.Run(tokens.unsqueeze(0))[0];
        Assert.True((replaced - original).abs().max().item<float>() < 1e-5f);
    }
}
