using SharpLens.Tests.Techniques;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Techniques;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Dla = SharpLens.Techniques.DirectLogitAttribution;

namespace SharpLens.Tests.Techniques.DirectLogitAttribution;

public class DirectLogitAttributionTests
{
    /// <summary>Components at the last position must add up to the model's own logit difference there.</summary>
    internal static void AssertDecompositionsSum(HookedTransformer model, Tensor tokens, Tensor answers, Tensor wrongs, ITestOutputHelper? output = null)
    {
        using var _ = no_grad();
        var (logits, cache) = Dla.RunWithCache(model, tokens);
        using (cache)
        {
            var expected = Dla.LogitDifference(logits, answers, wrongs);
            foreach (var stack in new[] { Dla.DecomposedResidual(model, cache), Dla.PerHeadResidual(model, cache) })
                using (stack)
                {
                    var attribution = Dla.Project(model, stack, cache, answers, wrongs);
                    for (int b = 0; b < expected.Length; b++)
                    {
                        double error = Math.Abs(attribution.Total(b) - expected[b]);
                        output?.WriteLine($"{stack.Names.Count} components, sequence {b}: sum {attribution.Total(b):0.000000} vs logit diff {expected[b]:0.000000}");
                        Assert.True(error < 1e-4, $"{string.Join(",", stack.Names)}: sum {attribution.Total(b)} vs logit difference {expected[b]} (error {error:e2})");
                    }
                }
            // The last accumulated row is the whole stream: alone it gives the logit difference (plus constants).
            using var accumulated = Dla.AccumulatedResidual(model, cache);
            var acc = Dla.Project(model, accumulated, cache, answers, wrongs);
            int final = accumulated.Names.Count - 1;
            double constants = acc.Values[acc.Names.Count - 1, 0] + (model.ln_final.b is null ? 0 : acc.Values[acc.Names.Count - 2, 0]);
            Assert.True(Math.Abs(acc.Values[final, 0] + constants - expected[0]) < 1e-4);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Components_sum_to_the_logit_difference_on_a_layernorm_model(bool processed)
    {
        using var raw = TestModels.RandomModel(TestModels.Tiny(norm: Normalization.LN));
        using var model = processed ? WeightProcessing.Process(raw) : raw;
        var tokens = TestModels.RandomTokens(3, 10, model.Config.DVocab);
        AssertDecompositionsSum(model, tokens, tensor(new long[] { 4, 9, 17 }), tensor(new long[] { 5, 1, 30 }));
    }

    [Fact]
    public void Components_sum_to_the_logit_difference_on_an_attention_only_no_norm_model()
    {
        using var model = TestModels.RandomModel(TestModels.Tiny(attnOnly: true, norm: Normalization.None));
        var tokens = TestModels.RandomTokens(2, 7, model.Config.DVocab);
        AssertDecompositionsSum(model, tokens, tensor(new long[] { 2, 3 }), tensor(new long[] { 8, 13 }));
    }

    [Fact]
    public void Per_head_terms_add_up_to_the_layers_attention_output()
    {
        using var model = TestModels.RandomModel(TestModels.Tiny(norm: Normalization.LN));
        var tokens = TestModels.RandomTokens(2, 8, model.Config.DVocab);
        var (_, cache) = Dla.RunWithCache(model, tokens);
        using (cache)
        using (var heads = Dla.PerHeadResidual(model, cache))
        {
            var layer1 = Enumerable.Range(0, heads.Names.Count).Where(i => heads.Names[i].StartsWith("L1H") || heads.Names[i] == "1_b_O").ToList();
            Assert.Equal(model.Config.NHeads + 1, layer1.Count);
            var sum = heads.Components.index_select(0, tensor(layer1.Select(i => (long)i).ToArray())).sum([0]);
            Assert.True((sum - cache["attn_out", 1]).abs().max().item<float>() < 1e-5);
        }
    }
}

[Collection(TechniqueOrganismCollection.Name)]
public class DirectLogitAttributionInductionTests(SmallInductionOrganism small, ITestOutputHelper output)
{
    [Fact]
    public void Components_sum_to_the_logit_difference_on_the_no_norm_induction_organism()
    {
        var settings = SmallInductionOrganism.Settings;
        var tokens = InductionOrganism.RepeatedSequences(settings, 4, new Generator(5))[.., ..^1]; // end mid-repeat
        var answers = InductionOrganism.RepeatedSequences(settings, 4, new Generator(5))[.., ^1];
        var wrongs = (answers % (settings.Vocab - 1)) + 1; // another token, never the answer
        DirectLogitAttributionTests.AssertDecompositionsSum(small.Organism.Model, tokens, answers, wrongs, output);
    }

    [Fact]
    public void Top_direct_contributor_to_the_repeated_token_is_the_induction_head()
    {
        var settings = SmallInductionOrganism.Settings;
        var model = small.Organism.Model;
        var full = InductionOrganism.RepeatedSequences(settings, 32, new Generator(6));
        var tokens = full[.., ..^1];
        var answers = full[.., -1];
        var wrongs = (answers % (settings.Vocab - 1)) + 1;
        var (_, cache) = Dla.RunWithCache(model, tokens);
        using (cache)
        using (var heads = Dla.PerHeadResidual(model, cache))
        {
            var attribution = Dla.Project(model, heads, cache, answers, wrongs);
            var mean = Enumerable.Range(0, attribution.Names.Count)
                .Select(c => (Name: attribution.Names[c], Value: Enumerable.Range(0, 32).Average(b => attribution.Values[c, b])))
                .OrderByDescending(x => x.Value).ToList();
            foreach (var (name, value) in mean) output.WriteLine($"{name,-10} {value,8:0.000}");
            // The top contributor is the induction head the detector found.
            var top = small.Findings.TopInductionHead.Head;
            Assert.Equal($"L{top.Layer}H{top.Head}", mean[0].Name);
        }
    }
}
