using SharpLens.Hooks;
using SharpLens.Techniques;
using SharpLens.Techniques.Circuits;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Names;

/// <summary>TransformerLens's names (cache.decompose_resid, model.QK, utils.get_act_name, ...) give what the SharpLens statics give.</summary>
public sealed class TransformerLensNamesTests
{
    static float MaxDiff(Tensor a, Tensor b) => (a - b).abs().max().item<float>();

    [Fact]
    public void Cache_methods_equal_the_direct_logit_attribution_statics()
    {
        using var scope = NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 7, 50);
        var (logits, cache) = DirectLogitAttribution.RunWithCache(model, tokens);
        using (cache)
        {
            foreach (var (byName, byStatic) in new[]
            {
                (cache.DecomposeResid(model), DirectLogitAttribution.DecomposedResidual(model, cache)),
                (cache.AccumulatedResid(model), DirectLogitAttribution.AccumulatedResidual(model, cache)),
                (cache.StackHeadResults(model), DirectLogitAttribution.PerHeadResidual(model, cache)),
            })
            {
                Assert.Equal(byStatic.Names, byName.Names);
                Assert.Equal(0f, MaxDiff(byName.Components, byStatic.Components));
            }
            var stack = cache.DecomposeResid(model);
            Assert.Equal(0f, MaxDiff(cache.ApplyLnToStack(model, stack.Components), DirectLogitAttribution.ApplyLnToStack(model, stack.Components, cache)));

            var answers = tensor(new long[] { 3, 4 });
            var wrongs = tensor(new long[] { 8, 9 });
            var attrs = cache.LogitAttrs(model, stack, answers, wrongs);
            var byStaticAttrs = DirectLogitAttribution.Project(model, stack, cache, answers, wrongs);
            Assert.Equal(byStaticAttrs.Names, attrs.Names);
            Assert.Equal(byStaticAttrs.Values, attrs.Values);
            // And the decomposition still sums to the model's own logit difference.
            var direct = DirectLogitAttribution.LogitDifference(logits, answers, wrongs);
            Assert.Equal(direct[1], attrs.Total(1), 3);
        }
    }

    [Fact]
    public void Model_QK_and_OV_are_the_weight_circuits_and_get_act_name_is_act_name()
    {
        using var scope = NewDisposeScope();
        using var model = TestModels.RandomModel();
        Assert.Equal(0f, MaxDiff(model.QK.AB, WeightCircuits.QK(model).AB));
        Assert.Equal(0f, MaxDiff(model.OV.AB, WeightCircuits.OV(model).AB));
        Assert.Equal(new long[] { 2, 4, 32, 32 }, model.QK.Shape);
        var attn = model.blocks[1].attn;
        Assert.True(MaxDiff(model.OV.AB[1, 2], attn.W_V[2].matmul(attn.W_O[2])) < 1e-5f);

        Assert.Equal("blocks.3.hook_resid_pre", HookNames.GetActName("resid_pre", 3));
        Assert.Equal("blocks.0.attn.hook_pattern", HookNames.GetActName("attn", 0));
        Assert.Equal("blocks.2.ln1.hook_scale", HookNames.GetActName("scale", 2, "ln1"));
        foreach (var (kind, layer) in new[] { ("q", 1), ("post", 0), ("mlp_out", 1), ("z", 0) })
            Assert.Equal(ActivationCache.ActName(kind, layer), HookNames.GetActName(kind, layer));
        Assert.True(model.HookDict.ContainsKey(HookNames.GetActName("post", 1)));
    }
}
