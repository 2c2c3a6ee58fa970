using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Hooks;

public class HookBehaviourTests
{
    static float MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void A_replacing_hook_changes_the_output_and_is_gone_after_the_call()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        var clean = model.Run(tokens);
        var ablated = model.RunWithHooks(tokens, [("blocks.0.hook_attn_out", (a, h) => zeros_like(a))]);
        Assert.True(MaxDiff(clean, ablated) > 1e-3);
        Assert.Equal(0f, MaxDiff(clean, model.Run(tokens)));
        Assert.All(model.HookDict.Values, h => Assert.False(h.HasHooks));
    }

    [Fact]
    public void Zero_ablating_attention_output_matches_running_without_that_sublayer()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        var (_, cache) = model.RunWithCache(tokens, ["blocks.1.hook_resid_pre"]);
        using (cache)
        {
            // With attn_out of layer 1 zeroed, resid_mid equals resid_pre: check the hook really replaced it.
            Tensor? mid = null;
            model.RunWithHooks(tokens, [
                ("blocks.1.hook_attn_out", (a, h) => zeros_like(a)),
                ("blocks.1.hook_resid_mid", (a, h) => { mid = a.clone().DetachFromDisposeScope(); return null; })]);
            Assert.Equal(0f, MaxDiff(mid!, cache["resid_pre", 1]));
            mid!.Dispose();
        }
    }

    [Fact]
    public void Hooks_are_removed_even_when_the_run_throws()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        Assert.Throws<InvalidOperationException>(() =>
            model.RunWithHooks(tokens, [
                ("blocks.0.hook_resid_pre", (a, h) => null),
                ("blocks.1.hook_mlp_out", (a, h) => throw new InvalidOperationException("boom"))]));
        Assert.All(model.HookDict.Values, h => Assert.False(h.HasHooks));
    }

    [Fact]
    public void A_hook_that_changes_the_shape_is_refused_with_the_hook_name()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var e = Assert.Throws<ArgumentException>(() =>
            model.RunWithHooks(TestModels.RandomTokens(1, 8, 50), [("blocks.0.hook_resid_mid", (a, h) => a[.., 1..])]));
        Assert.Contains("blocks.0.hook_resid_mid", e.Message);
    }

    [Fact]
    public void Long_lived_hooks_stay_until_their_handle_is_disposed()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        int calls = 0;
        var handle = model.AddHook("blocks.1.attn.hook_z", (a, h) => { calls++; return null; });
        model.Run(tokens);
        model.Run(tokens);
        handle.Dispose();
        model.Run(tokens);
        Assert.Equal(2, calls);

        var seen = new List<string>();
        using (model.AddHook(n => n.EndsWith("hook_resid_post"), (a, h) => { seen.Add(h.Name); return null; }))
            model.Run(tokens);
        Assert.Equal(["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], seen);
    }

    [Fact]
    public void Backward_hooks_see_the_gradient_of_the_activation()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        Tensor? seenGrad = null;
        Tensor? leaf = null;
        // Independent reference: make resid_mid a leaf tensor, so autograd fills leaf.grad with the same gradient.
        using (model.Hooks(
                   forward: [("blocks.1.hook_resid_mid", (a, h) => leaf = a.detach().requires_grad_(true).DetachFromDisposeScope())],
                   backward: [("blocks.1.hook_resid_mid", (g, h) => { seenGrad = g.clone().DetachFromDisposeScope(); return null; })]))
        {
            var logits = model.Run(tokens);
            logits[0, 5, 3].backward();
        }
        Assert.NotNull(seenGrad);
        Assert.Equal(new long[] { 1, 8, 32 }, seenGrad!.shape);
        Assert.True(MaxDiff(seenGrad, leaf!.grad!) < 1e-7);
        // Causality: a logit at position 5 gets nothing from positions 6 and 7.
        Assert.Equal(0f, seenGrad[0, 6..].abs().max().item<float>());
        Assert.True(seenGrad[0, ..6].abs().sum().item<float>() > 0);
    }

    [Fact]
    public void A_backward_hook_can_replace_the_gradient()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 8, 50);
        using (model.Hooks(backward: [("hook_embed", (g, h) => zeros_like(g))]))
        {
            model.Run(tokens).sum().backward();
        }
        Assert.Equal(0f, model.embed.W_E.grad!.abs().sum().item<float>());
        Assert.True(model.pos_embed!.W_pos.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void A_misspelt_hook_name_lists_the_closest_valid_names()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var e = Assert.Throws<HookNotFoundException>(() => model.AddHook("blocks.0.hook_resid_prex", (a, h) => null));
        Assert.Contains("'blocks.0.hook_resid_pre'", e.Message);
        var e2 = Assert.Throws<HookNotFoundException>(() => model.RunWithCache(TestModels.RandomTokens(1, 4, 50), ["blocks.1.attn.hook_patern"]));
        Assert.Contains("'blocks.1.attn.hook_pattern'", e2.Message);
        Assert.All(model.HookDict.Values, h => Assert.False(h.HasHooks));
    }

    [Fact]
    public void Cache_is_indexed_by_kind_and_layer_like_get_act_name()
    {
        Assert.Equal("blocks.3.hook_resid_post", ActivationCache.ActName("resid_post", 3));
        Assert.Equal("blocks.0.attn.hook_pattern", ActivationCache.ActName("attn", 0));
        Assert.Equal("blocks.2.mlp.hook_post", ActivationCache.ActName("post", 2));
        Assert.Equal("blocks.1.ln2.hook_scale", ActivationCache.ActName("scale", 1, "ln2"));
        Assert.Equal("ln_final.hook_scale", ActivationCache.ActName("scale"));
        Assert.Equal("hook_embed", ActivationCache.ActName("embed"));
    }

    [Fact]
    public void Cache_moves_to_another_device_as_a_copy()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 4, 50), ["blocks.0.hook_resid_post"], cacheDevice: CPU);
        using (cache)
        using (var copy = cache.To(CPU))
        {
            Assert.Equal(0f, MaxDiff(copy["blocks.0.hook_resid_post"], cache["blocks.0.hook_resid_post"]));
            Assert.Equal(4L * 32 * 4, cache.TotalBytes);
        }
    }
}
