using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Tracing;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Tracing;

/// <summary>Every element of the Trace API against the hook API on a small random model with MLPs.</summary>
public sealed class TraceApiTests : IDisposable
{
    readonly HookedTransformer _model = TestModels.RandomModel();
    readonly Tensor _tokens = TestModels.RandomTokens(2, 8, 50);

    public void Dispose() { _model.Dispose(); _tokens.Dispose(); }

    static double MaxDiff(Tensor a, Tensor b) => (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();

    static void Close(Tensor a, Tensor b, double tolerance = 1e-6, string what = "")
    {
        Assert.Equal(b.shape, a.shape);
        double d = MaxDiff(a, b);
        Assert.True(d <= tolerance, $"{what}: max |difference| {d:E2} > {tolerance:E0}");
    }

    [Fact]
    public void Save_returns_what_the_cache_records_and_the_logits()
    {
        var t = _model.Trace(_tokens);
        var post = t.Blocks[0].Mlp.Post[.., ^1].Save();
        var pattern = t.Blocks[1].Attn.Pattern.Save();
        var resid = t["blocks.1.hook_resid_mid"].Save("mid");
        var logits = t.Output.Save();
        using var result = t.Run();
        // The hook API with the same hooks: a cache of all hooks would compute layer 0's attention without the fused kernel.
        var (expected, cache) = _model.RunWithCache(_tokens, ["blocks.0.mlp.hook_post", "blocks.1.attn.hook_pattern", "blocks.1.hook_resid_mid"]);
        using (cache)
        {
            Close(pattern.Value, cache["blocks.1.attn.hook_pattern"], what: "pattern");
            Close(post.Value, cache["blocks.0.mlp.hook_post"][.., -1], what: "post");
            Close(result["mid"], cache["blocks.1.hook_resid_mid"], what: "resid_mid");
            Close(logits.Value, expected, what: "logits");
        }
    }

    [Fact]
    public void In_place_edit_with_slicing_equals_the_same_hook()
    {
        var t = _model.Trace(_tokens);
        t.Blocks[0].Output[.., ^1] *= 2;
        t.Blocks[1].Attn.Pattern[.., 0] = 0.0;
        var logits = t.Output.Save();
        using var result = t.Run();
        var expected = _model.RunWithHooks(_tokens, [
            ("blocks.0.hook_resid_post", (a, _) => { var c = a.clone(); c[.., -1] *= 2; return c; }),
            ("blocks.1.attn.hook_pattern", (a, _) => { var c = a.clone(); c[.., 0] = 0; return c; }),
        ]);
        Assert.True(MaxDiff(logits.Value, expected) < 1e-6);
        Assert.True(MaxDiff(logits.Value, _model.Run(_tokens)) > 1e-3, "the edit changed nothing");
    }

    [Fact]
    public void Invokes_batch_into_one_forward_and_each_sees_its_own_rows()
    {
        var a = _tokens[0..1];
        var b = TestModels.RandomTokens(3, 8, 50, seed: 9);
        var t = _model.Trace();
        var first = t.Invoke(a);
        var second = t.Invoke(b);
        var fa = first.Blocks[1].Output.Save();
        var fb = second.Blocks[1].Output.Save();
        var all = t.Blocks[1].Output.Save();
        using var result = t.Run();
        Assert.Equal([1L, 8, 32], fa.Value.shape);
        Assert.Equal([3L, 8, 32], fb.Value.shape);
        Assert.Equal([4L, 8, 32], all.Value.shape);
        var (_, ca) = _model.RunWithCache(a, ["blocks.1.hook_resid_post"]);
        var (_, cb) = _model.RunWithCache(b, ["blocks.1.hook_resid_post"]);
        Assert.True(MaxDiff(fa.Value, ca["blocks.1.hook_resid_post"]) < 1e-6);
        Assert.True(MaxDiff(fb.Value, cb["blocks.1.hook_resid_post"]) < 1e-6);
        ca.Dispose(); cb.Dispose();
    }

    [Fact]
    public void Invokes_of_different_lengths_are_left_padded_like_a_masked_batch()
    {
        var shortPrompt = _tokens[0..1, 3..];
        var t = _model.Trace();
        var s = t.Invoke(shortPrompt).Output[.., ^1].Save();
        var l = t.Invoke(_tokens[1..2]).Output[.., ^1].Save();
        using var result = t.Run();
        Assert.True(MaxDiff(s.Value, _model.Run(shortPrompt)[.., -1]) < 1e-5);
        Assert.True(MaxDiff(l.Value, _model.Run(_tokens[1..2])[.., -1]) < 1e-5);
    }

    [Fact]
    public void One_invokes_activation_patched_into_another_equals_hook_patching()
    {
        var clean = _tokens[0..1];
        var corrupt = _tokens[1..2];
        var t = _model.Trace();
        var c = t.Invoke(clean);
        var h = c.Blocks[0].Output[.., 3];
        var k = t.Invoke(corrupt);
        k.Blocks[0].Output[.., 3] = h;
        var patched = k.Output.Save();
        using var result = t.Run();

        var (_, cache) = _model.RunWithCache(clean, ["blocks.0.hook_resid_post"]);
        using (cache)
        {
            var source = cache["blocks.0.hook_resid_post"];
            var expected = _model.RunWithHooks(corrupt, [("blocks.0.hook_resid_post", (a, _) => { var x = a.clone(); x[.., 3] = source[.., 3]; return x; })]);
            Assert.True(MaxDiff(patched.Value, expected) < 1e-6);
        }
    }

    [Fact]
    public void Stop_ends_the_forward_early_and_keeps_what_came_before()
    {
        var t = _model.Trace(_tokens);
        var early = t.Blocks[0].Output.Save();
        t.Stop();
        using var result = t.Run();
        Assert.True(result.Stopped);
        var (_, cache) = _model.RunWithCache(_tokens, ["blocks.0.hook_resid_post"]);
        using (cache) Assert.Equal(0, MaxDiff(early.Value, cache["blocks.0.hook_resid_post"]));

        var late = _model.Trace(_tokens);
        late.Blocks[0].Output.Save();
        late.Stop();
        late.Blocks[1].Output.Save();
        var e = Assert.Throws<TraceOrderException>(() => late.Run());
        Assert.Contains("blocks.1.hook_resid_post", e.Message);
        Assert.Contains("blocks.0.hook_resid_post", e.Message);
    }

    [Fact]
    public void Gradients_of_saved_values_equal_backward_hooks()
    {
        var t = _model.Trace(_tokens);
        var resid = t.Blocks[0].Output;
        var logit = t.Output[.., ^1, 7].Sum();
        t.Backward(logit);
        var grad = ((HookValue)resid).Grad.Save("grad");
        using var result = t.Run();

        Tensor? expected = null;
        using (_model.Hooks(backward: [("blocks.0.hook_resid_post", (g, _) => { expected = g.detach().clone().DetachFromDisposeScope(); return null; })]))
        using (torch.enable_grad())
            _model.Run(_tokens)[.., -1, 7].sum().backward();
        foreach (var p in _model.parameters()) p.grad = null;
        Assert.NotNull(expected);
        Assert.True(MaxDiff(result["grad"], expected!) < 1e-6);
        Assert.True(result["grad"].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void Generation_gives_per_step_values_and_the_tokens_greedy_generation_gives()
    {
        var prompt = _tokens[0..1, ..5];
        var t = _model.Trace(prompt).Generate(4);
        var first = t.Step(0).Blocks[0].Attn.Pattern.Save("p0");
        var last = t.AllSteps.Blocks[1].Output[.., ^1].Save("last");
        var middle = t.Steps(1..3).Output.Save("mid");
        using var result = t.Run();
        Assert.Equal(0, MaxDiff(result.Generated!, _model.Generate(prompt, 4, temperature: 0)));
        Assert.Equal([0, 1, 2, 3], result.StepIndices("last"));
        Assert.Equal([1, 2], result.StepIndices("mid"));
        Assert.Equal([1L, 4, 5, 5], first.Value.shape);
        Assert.Equal([1L, 1, 50], middle.Steps[0].shape);
        // Step k's last position is the model's residual at position 5 + k - 1 of the generated sequence.
        var (_, cache) = _model.RunWithCache(result.Generated![.., ..^1], ["blocks.1.hook_resid_post"]);
        using (cache)
            for (int k = 0; k < 4; k++)
                Assert.True(MaxDiff(last.Steps[k], cache["blocks.1.hook_resid_post"][.., 4 + k]) < 1e-5);
    }

    [Fact]
    public void Steering_every_generation_step_equals_steering_hooks()
    {
        var prompt = _tokens[0..1, ..5];
        var direction = torch.randn(32, generator: new Generator(3));
        var t = _model.Trace(prompt).Generate(5);
        t.AllSteps.Blocks[0].Output[.., ^1] += direction * 3.0;
        using var result = t.Run();
        using (SharpLens.Techniques.Steering.Apply(_model, "blocks.0.hook_resid_post", direction, 3.0, SharpLens.Techniques.SteeringPositions.Last))
            Assert.Equal(0, MaxDiff(result.Generated!, _model.Generate(prompt, 5, temperature: 0)));
    }

    [Fact]
    public void Out_of_order_access_is_refused_naming_both_hooks()
    {
        var t = _model.Trace(_tokens);
        var late = t.Blocks[1].Output;
        t.Blocks[0].Output = late;
        var e = Assert.Throws<TraceOrderException>(() => t.Run());
        Assert.Contains("'blocks.0.hook_resid_post'", e.Message);
        Assert.Contains("'blocks.1.hook_resid_post'", e.Message);
        Assert.IsAssignableFrom<SharpLensException>(e);

        var q = _model.Trace(_tokens);
        q.Blocks[1].Output.Save();
        q.Blocks[0].Attn.Pattern.Save();
        var e2 = Assert.Throws<TraceOrderException>(() => q.Run());
        Assert.Contains("blocks.0.attn.hook_pattern", e2.Message);
        Assert.Contains("blocks.1.hook_resid_post", e2.Message);
    }

    [Fact]
    public void Unknown_hook_is_refused_with_the_closest_names()
    {
        var t = _model.Trace(_tokens);
        var e = Assert.Throws<PlanValidationException>(() => t["blocks.0.hook_resid_psot"].Save());
        Assert.Contains("blocks.0.hook_resid_psot", e.Message);
        Assert.Contains("blocks.0.hook_resid_post", e.Message);
        Assert.Throws<PlanValidationException>(() => t.Blocks[7]);
    }

    [Fact]
    public void Shape_changing_write_is_refused_naming_hook_invoke_and_shapes()
    {
        var t = _model.Trace();
        t.Invoke(_tokens);
        var one = t.Invoke(_tokens[0..1]);
        one.Blocks[0].Output = torch.zeros(2, 8, 32);
        var e = Assert.Throws<TraceShapeException>(() => t.Run());
        Assert.Contains("blocks.0.hook_resid_post", e.Message);
        Assert.Contains("invoke 1", e.Message);
        Assert.Contains("[2, 8, 32]", e.Message);
        Assert.Contains("[1, 8, 32]", e.Message);
    }

    [Fact]
    public void A_plan_round_trips_through_json_and_runs_the_same()
    {
        var t = _model.Trace(_tokens);
        t.Blocks[0].Mlp.Post[.., .., 3] = 0.0;
        var lens = t.Blocks[0].Output.LnFinal().Unembed().LogSoftmax().Save("lens");
        using var direct = t.Run();
        var json = TracePlanJson.ToJson(t.ToPlan());
        using var again = _model.Run(TracePlanJson.Parse(json));
        Assert.Equal(0, MaxDiff(direct["lens"], again["lens"]));
        Assert.Equal(0, MaxDiff(lens.Value, again["lens"]));
    }
}
