using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Saes;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using SharpLens.Tests.Encoder;
using SharpLens.Tests.Organisms;
using SharpLens.Tests.Techniques;
using SharpLens.Tracing;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Tracing;

static class Equal
{
    public static double MaxDiff(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();

    /// <summary>Asserts equal shapes and values within 1e-6, the acceptance line, and returns the difference.</summary>
    public static double Within(Tensor actual, Tensor expected, string what, ITestOutputHelper? output = null, double tolerance = 1e-6)
    {
        Assert.Equal(expected.shape, actual.shape);
        double d = MaxDiff(actual, expected);
        output?.WriteLine($"{what}: max |trace − hooks| = {d:E2}");
        Assert.True(d <= tolerance, $"{what}: max |difference| {d:E2} > {tolerance:E0}");
        return d;
    }
}

/// <summary>
/// Patching, ablation, steering and the logit lens on the induction organism, written with the hook API (the
/// technique library) and as a trace: the numbers agree within 1e-6.
/// </summary>
[Collection(TechniqueOrganismCollection.Name)]
public sealed class TraceEquivalenceTests(SmallInductionOrganism small, ITestOutputHelper output)
{
    HookedTransformer Model => small.Organism.Model;

    PromptPairs Pairs()
    {
        var settings = SmallInductionOrganism.Settings;
        var full = InductionOrganism.RepeatedSequences(settings, 6, new Generator(11)); // [pairs, 2n + 1]
        int n = settings.HalfLength, k = 5;
        var clean = full[.., ..(n + 1 + k)];
        var x = tensor(Enumerable.Range(0, 6).Select(b => (long)Enumerable.Range(1, settings.Vocab - 1).First(t => !clean[b].data<long>().Contains(t))).ToArray());
        var corrupted = clean.clone();
        corrupted[.., k + 1] = x;
        return new PromptPairs(clean, corrupted, full[.., k + 1], x);
    }

    [Fact]
    public void Activation_patching_of_heads_as_a_trace_equals_the_sweep()
    {
        using var scope = NewDisposeScope();
        using var pairs = Pairs();
        using var sweep = ActivationPatching.Sweep(Model, pairs, "z"); // [n_layers, n_heads]
        int layers = Model.Config.NLayers, heads = Model.Config.NHeads;

        // One forward: the clean prompts, then one invoke of corrupted prompts per head, each given the clean z of its head.
        var t = Model.Trace();
        var clean = t.Invoke(pairs.Clean);
        var cleanZ = Enumerable.Range(0, layers).Select(l => clean.Blocks[l].Attn.Z).ToList();
        var cleanOut = clean.Output.Save("clean");
        var patched = new List<Saved>();
        for (int l = 0; l < layers; l++)
            for (int h = 0; h < heads; h++)
            {
                var corrupt = t.Invoke(pairs.Corrupted);
                corrupt.Blocks[l].Attn.Z[.., .., h] = cleanZ[l][.., .., h];
                patched.Add(corrupt.Output.Save($"patched.{l}.{h}"));
            }
        var corruptedOut = t.Invoke(pairs.Corrupted).Output.Save("corrupted");
        using var result = t.Run();

        double Metric(Tensor logits) => PatchingMetrics.PerPrompt(PatchingMetric.LogitDifference, logits, pairs).mean().item<float>();
        double c = Metric(cleanOut.Value), k = Metric(corruptedOut.Value);
        var traced = tensor(patched.Select(p => (float)((Metric(p.Value) - k) / (c - k))).ToArray()).view(layers, heads);
        Equal.Within(traced, sweep.Values, "patching z by head (normalised logit difference)", output);
        Assert.True(traced.max().item<float>() > 0.3f, "some head's clean z restores the answer");
    }

    [Fact]
    public void Zero_ablation_of_heads_as_a_trace_equals_the_sweep()
    {
        using var scope = NewDisposeScope();
        using var pairs = Pairs();
        using var sweep = Ablation.Sweep(Model, pairs, AblationUnit.Heads); // metric [n_layers, n_heads]
        int layers = Model.Config.NLayers, heads = Model.Config.NHeads;
        var t = Model.Trace();
        var outs = new List<Saved>();
        for (int l = 0; l < layers; l++)
            for (int h = 0; h < heads; h++)
            {
                var inv = t.Invoke(pairs.Clean);
                inv.Blocks[l].Attn.Z[.., .., h] = 0.0;
                outs.Add(inv.Output.Save());
            }
        using var result = t.Run();
        var traced = tensor(outs.Select(o => PatchingMetrics.PerPrompt(PatchingMetric.LogitDifference, o.Value, pairs).mean().item<float>()).ToArray()).view(layers, heads);
        Equal.Within(traced, sweep.Metric, "zero-ablating heads (logit difference)", output);
    }

    [Fact]
    public void Steering_as_a_trace_equals_the_steering_hook()
    {
        using var scope = NewDisposeScope();
        using var pairs = Pairs();
        var direction = randn(Model.Config.DModel, generator: new Generator(4));
        var expected = Steering.Run(Model, pairs.Clean, "blocks.0.hook_resid_post", direction, 2.5);
        var t = Model.Trace(pairs.Clean);
        t.Blocks[0].Output += direction * 2.5;
        var logits = t.Output.Save();
        using var result = t.Run();
        Equal.Within(logits.Value, expected, "steering blocks.0.hook_resid_post (logits)", output);
    }

    [Fact]
    public void The_logit_lens_as_a_trace_equals_the_lens()
    {
        using var scope = NewDisposeScope();
        using var pairs = Pairs();
        using var lens = LogitLens.Run(Model, pairs.Clean);
        var t = Model.Trace(pairs.Clean);
        var rows = Enumerable.Range(0, Model.Config.NLayers).Select(l => t.Blocks[l].Input.LnFinal().Unembed().LogSoftmax()).ToList();
        rows.Add(t.Output.LogSoftmax());
        var traced = TraceValue.Stack(0, [.. rows]).Save("lens");
        using var result = t.Run();
        Equal.Within(traced.Value, lens.LogProbs, "logit lens (log-probs, every layer)", output);
    }

    [Fact]
    public void The_same_patching_as_a_json_plan_equals_the_hook_api()
    {
        using var scope = NewDisposeScope();
        using var pairs = Pairs();
        var (_, cache) = Model.RunWithCache(pairs.Clean, ["blocks.0.hook_resid_post"]);
        Tensor expected;
        using (cache)
        {
            var source = cache["blocks.0.hook_resid_post"];
            expected = Model.RunWithHooks(pairs.Corrupted, [("blocks.0.hook_resid_post", (a, _) => { var x = a.clone(); x[.., 6] = source[.., 6]; return x; })]);
        }
        string Rows(Tensor t) => string.Join(", ", Enumerable.Range(0, (int)t.shape[0]).Select(b => "[" + string.Join(", ", t[b].data<long>().ToArray()) + "]"));
        var plan = TracePlanJson.Parse($$"""
            { "sharplens_plan": 1,
              "invokes": [ { "tokens": [{{Rows(pairs.Clean)}}] }, { "tokens": [{{Rows(pairs.Corrupted)}}] } ],
              "ops": [
                { "op": "read", "id": "clean", "hook": "blocks.0.hook_resid_post", "invoke": 0, "index": "[:, 6]" },
                { "op": "write", "hook": "blocks.0.hook_resid_post", "invoke": 1, "index": "[:, 6]", "value": { "ref": "clean" } },
                { "op": "read", "id": "out", "hook": "output", "invoke": 1 },
                { "op": "save", "name": "patched", "value": { "ref": "out" } } ] }
            """);
        using var result = Model.Run(plan);
        Equal.Within(result["patched"], expected, "JSON plan patching blocks.0.hook_resid_post", output);
    }
}

/// <summary>The same techniques on all-MiniLM-L6-v2, a real pretrained encoder: trace and hook API agree within 1e-6.</summary>
[Collection("minilm")]
public sealed class MiniLmTraceTests(MiniLmFixture f, ITestOutputHelper output)
{
    Tensor Tokens(string text) => tensor(f.Tokenizer.Encode(text).Select(i => (long)i).ToArray()).unsqueeze(0);

    [Fact]
    public void Patching_ablation_and_steering_on_minilm_equal_the_hook_api()
    {
        using var scope = NewDisposeScope();
        var clean = Tokens("the cat sat on the mat");
        var corrupt = Tokens("the dog sat on the mat");
        Assert.Equal(clean.shape, corrupt.shape);

        // Patching: the clean resid_post of block 2 at position 2 put into the corrupted run.
        var (_, cache) = f.Model.RunWithCache(clean, n => n == "blocks.2.hook_resid_post");
        Tensor expectedPatch;
        using (cache)
        {
            var source = cache["blocks.2.hook_resid_post"];
            expectedPatch = f.Model.RunWithHooks(corrupt, [("blocks.2.hook_resid_post", (a, _) => { var x = a.clone(); x[.., 2] = source[.., 2]; return x; })]);
        }
        var t = f.Model.Trace();
        var h = t.Invoke(clean).Blocks[2].ResidPost[.., 2];
        var k = t.Invoke(corrupt);
        k.Blocks[2].ResidPost[.., 2] = h;
        var patched = k.Output.Save();
        using (t.Run()) Equal.Within(patched.Value, expectedPatch, "MiniLM patching blocks.2.hook_resid_post", output);

        // Ablation: head 3 of block 1 zeroed.
        var expectedAblation = f.Model.RunWithHooks(clean, [("blocks.1.attn.hook_z", (z, _) => { var x = z.clone(); x[.., .., 3] = 0; return x; })]);
        var a = f.Model.Trace(clean);
        a.Blocks[1].Attn.Z[.., .., 3] = 0.0;
        var ablated = a.Output.Save();
        using (a.Run()) Equal.Within(ablated.Value, expectedAblation, "MiniLM zero-ablating blocks.1 head 3", output);

        // Steering: a direction added to the block 3 output (BERT's hook_normalized_resid_post).
        var direction = randn(384, generator: new Generator(2));
        var expectedSteer = f.Model.RunWithHooks(clean, [("blocks.3.hook_normalized_resid_post", (x, _) => x + direction * 0.5)]);
        var s = f.Model.Trace(clean);
        s.Blocks[3].Output += direction * 0.5;
        var steered = s.Output.Save();
        using (s.Run())
        {
            Equal.Within(steered.Value, expectedSteer, "MiniLM steering blocks.3 output", output);
            Assert.True(Equal.MaxDiff(steered.Value, f.Model.Run(clean)) > 1e-3, "steering changed the hidden state");
        }
    }

    [Fact]
    public void Minilm_encoders_refuse_generation_and_ln_final()
    {
        var t = f.Model.Trace(Tokens("hello")).Generate(2);
        t.Output.Save();
        Assert.Contains("encoder", Assert.ThrowsAny<PlanValidationException>(() => t.Run()).Message);
        var l = f.Model.Trace(Tokens("hello"));
        l.Blocks[0].Output.LnFinal().Save();
        Assert.Contains("ln_final", Assert.ThrowsAny<PlanValidationException>(() => l.Run()).Message);
    }
}

/// <summary>A trace over an SAE-spliced model reaches the SAE's features like every other hook.</summary>
public sealed class SaeTraceTests
{
    [Fact]
    public void A_trace_reads_and_ablates_sae_features_as_the_hook_api_does()
    {
        using var scope = NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        using var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, 32, 64) { Metadata = new() { HookName = "blocks.1.hook_resid_pre" } }, 3);
        var spliced = new HookedSaeTransformer(model);
        using var _ = spliced.AddSae(sae);
        const string acts = "blocks.1.hook_resid_pre.hook_sae_acts_post";

        var (expectedLogits, cache) = spliced.RunWithCache(tokens, n => n == acts);
        var expectedAblated = spliced.RunWithHooks(tokens, [(acts, (x, _) => { var c = x.clone(); c[.., .., 5] = 0; return c; })]);
        var t = spliced.Trace(tokens);
        var features = t[acts].Save("features");
        var r = t.Output.Save();
        var ablate = spliced.Trace(tokens);
        ablate[acts][.., .., 5] = 0.0;
        var ablated = ablate.Output.Save();
        using (cache)
        using (t.Run())
        using (ablate.Run())
        {
            Equal.Within(features.Value, cache[acts], "SAE features");
            Equal.Within(r.Value, expectedLogits, "spliced logits");
            Equal.Within(ablated.Value, expectedAblated, "logits with feature 5 ablated");
        }
    }
}
