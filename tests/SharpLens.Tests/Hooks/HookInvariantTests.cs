using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Hooks;

public class HookInvariantTests
{
    static float MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void Residual_stream_is_the_sum_of_its_writers()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(2, 10, 50));
        using (cache)
        {
            for (int l = 0; l < model.Config.NLayers; l++)
            {
                Assert.True(MaxDiff(cache["resid_mid", l], cache["resid_pre", l] + cache["attn_out", l]) < 1e-6);
                Assert.True(MaxDiff(cache["resid_post", l], cache["resid_mid", l] + cache["mlp_out", l]) < 1e-6);
                if (l > 0) Assert.True(MaxDiff(cache["resid_pre", l], cache["resid_post", l - 1]) == 0);
            }
            Assert.True(MaxDiff(cache["blocks.0.hook_resid_pre"], cache["hook_embed"] + cache["hook_pos_embed"]) < 1e-6);
        }
    }

    [Fact]
    public void Attention_patterns_are_causal_distributions()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(3, 12, 50), n => n.EndsWith("hook_pattern"));
        using (cache)
        {
            var pattern = cache["pattern", 1]; // [batch, head, query, key]
            Assert.Equal(new long[] { 3, 4, 12, 12 }, pattern.shape);
            Assert.True(MaxDiff(pattern.sum(-1), ones(3, 4, 12)) < 1e-5);
            var future = ones(12, 12).triu(1).to(ScalarType.Bool);
            Assert.Equal(0f, pattern.masked_select(future.expand(3, 4, 12, 12)).abs().max().item<float>());
            Assert.True(pattern.min().item<float>() >= 0);
        }
    }

    [Fact]
    public void Hook_shapes_match_TransformerLens()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel(TestModels.Tiny(useAttnResult: true));
        var (logits, cache) = model.RunWithCache(TestModels.RandomTokens(2, 5, 50));
        using (cache)
        {
            var expected = new Dictionary<string, long[]>
            {
                ["hook_embed"] = [2, 5, 32], ["hook_pos_embed"] = [2, 5, 32],
                ["blocks.0.hook_resid_pre"] = [2, 5, 32], ["blocks.0.ln1.hook_scale"] = [2, 5, 1],
                ["blocks.0.ln1.hook_normalized"] = [2, 5, 32], ["blocks.0.attn.hook_q"] = [2, 5, 4, 8],
                ["blocks.0.attn.hook_k"] = [2, 5, 4, 8], ["blocks.0.attn.hook_v"] = [2, 5, 4, 8],
                ["blocks.0.attn.hook_attn_scores"] = [2, 4, 5, 5], ["blocks.0.attn.hook_pattern"] = [2, 4, 5, 5],
                ["blocks.0.attn.hook_z"] = [2, 5, 4, 8], ["blocks.0.attn.hook_result"] = [2, 5, 4, 32],
                ["blocks.0.hook_attn_out"] = [2, 5, 32], ["blocks.0.hook_resid_mid"] = [2, 5, 32],
                ["blocks.0.ln2.hook_scale"] = [2, 5, 1], ["blocks.0.ln2.hook_normalized"] = [2, 5, 32],
                ["blocks.0.mlp.hook_pre"] = [2, 5, 64], ["blocks.0.mlp.hook_post"] = [2, 5, 64],
                ["blocks.0.hook_mlp_out"] = [2, 5, 32], ["blocks.0.hook_resid_post"] = [2, 5, 32],
                ["ln_final.hook_scale"] = [2, 5, 1], ["ln_final.hook_normalized"] = [2, 5, 32],
            };
            foreach (var (name, shape) in expected) Assert.Equal(shape, cache[name].shape);
            Assert.Equal(new long[] { 2, 5, 50 }, logits.shape);
            Assert.Equal(2 * 18 + 4, cache.Count); // 18 per block with hook_result; embed, pos_embed, ln_final's two
        }
    }

    [Fact]
    public void Per_head_results_sum_to_the_attention_output()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel(TestModels.Tiny(useAttnResult: true));
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 7, 50));
        using (cache)
            Assert.True(MaxDiff(cache["result", 1].sum(2) + model.blocks[1].attn.b_O, cache["attn_out", 1]) < 1e-5);
    }

    [Fact]
    public void Explicit_attention_path_equals_the_fused_kernel()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 11, 50);
        var fused = model.Run(tokens);
        // Any hook on the pattern forces the explicit softmax(q kᵀ / √d) v path.
        var explicitPath = model.RunWithHooks(tokens, [("blocks.0.attn.hook_pattern", (a, h) => null), ("blocks.1.attn.hook_pattern", (a, h) => null)]);
        Assert.True(MaxDiff(fused, explicitPath) < 1e-5);
    }

    [Fact]
    public void Layer_norm_hooks_reproduce_the_fused_layer_norm()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 9, 50);
        var fused = model.Run(tokens);
        var (hooked, cache) = model.RunWithCache(tokens, n => n.Contains("ln") || n.EndsWith("resid_pre"));
        using (cache)
        {
            Assert.True(MaxDiff(fused, hooked) < 1e-5);
            var resid = cache["resid_pre", 1];
            var scale = cache["scale", 1, "ln1"];
            var centred = resid - resid.mean([-1], keepdim: true);
            Assert.True(MaxDiff(scale, (centred.pow(2).mean([-1], keepdim: true) + 1e-5).sqrt()) < 1e-6);
        }
    }

    [Fact]
    public void A_filtered_cache_holds_only_the_requested_names()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 6, 50), ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z"]);
        using (cache)
            Assert.Equal(["blocks.0.attn.hook_z", "blocks.1.hook_resid_post"], cache.Keys.Order());
        var (_, byFilter) = model.RunWithCache(TestModels.RandomTokens(1, 6, 50), n => n.EndsWith("hook_mlp_out"));
        using (byFilter)
            Assert.Equal(["blocks.0.hook_mlp_out", "blocks.1.hook_mlp_out"], byFilter.Keys.Order());
    }

    [Fact]
    public void Attention_only_blocks_have_no_mlp_hooks()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel(TestModels.Tiny(attnOnly: true));
        Assert.DoesNotContain("blocks.0.hook_resid_mid", model.HookDict.Keys);
        Assert.DoesNotContain("blocks.0.mlp.hook_post", model.HookDict.Keys);
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 6, 50));
        using (cache)
            Assert.True(MaxDiff(cache["resid_post", 0], cache["resid_pre", 0] + cache["attn_out", 0]) < 1e-6);
    }
}
