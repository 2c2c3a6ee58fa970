using SharpLens.Tests.Techniques;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Techniques;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.LogitLens;

public class LogitLensInvariantTests
{
    [Theory]
    [InlineData(Normalization.LN, false)]
    [InlineData(Normalization.LN, true)]
    [InlineData(Normalization.None, false)]
    public void Last_row_is_the_models_own_log_probs_and_rows_apply_the_final_norm(Normalization norm, bool processed)
    {
        using var raw = TestModels.RandomModel(TestModels.Tiny(norm: norm));
        using var model = processed ? WeightProcessing.Process(raw) : raw;
        if (processed) Assert.Equal(Normalization.LNPre, model.Config.FinalNormalization);
        var tokens = TestModels.RandomTokens(2, 9, model.Config.DVocab);
        using var _ = no_grad();
        using var lens = SharpLens.Techniques.LogitLens.Run(model, tokens);

        Assert.Equal(new long[] { 3, 2, 9, 50 }, lens.LogProbs.shape);
        Assert.Equal(["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "output"], lens.RowNames);
        Assert.True((lens.LogProbs[2] - model.Run(tokens).log_softmax(-1)).abs().max().item<float>() < 1e-5);

        // Independent reference for row 1: the model's own final norm and unembedding, reached by running the second
        // block as the identity (replace its output by its input).
        var (_, cache) = model.RunWithCache(tokens, ["blocks.1.hook_resid_pre"]);
        using (cache)
        {
            var reference = model.RunWithHooks(tokens, [("blocks.1.hook_resid_post", (_, _) => cache["blocks.1.hook_resid_pre"])]).log_softmax(-1);
            Assert.True((lens.LogProbs[1] - reference).abs().max().item<float>() < 1e-5);
        }
    }

    /// <summary>Llama-style models: RMSNorm, RMSPre once its weight is folded into the unembedding.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_rms_normed_models_lens_ends_with_its_own_log_probs_and_applies_its_final_norm(bool processed)
    {
        using var raw = TestModels.RandomModel(TestModels.Tiny(norm: Normalization.RMS));
        using var model = processed ? WeightProcessing.Process(raw) : raw;
        Assert.Equal(processed ? Normalization.RMSPre : Normalization.RMS, model.Config.FinalNormalization);
        var tokens = TestModels.RandomTokens(2, 9, model.Config.DVocab);
        using var _ = no_grad();
        using var lens = SharpLens.Techniques.LogitLens.Run(model, tokens);
        Assert.True((lens.LogProbs[2] - model.Run(tokens).log_softmax(-1)).abs().max().item<float>() < 1e-5);
        var (_, cache) = model.RunWithCache(tokens, ["blocks.1.hook_resid_pre"]);
        using (cache)
        {
            var reference = model.RunWithHooks(tokens, [("blocks.1.hook_resid_post", (_, _) => cache["blocks.1.hook_resid_pre"])]).log_softmax(-1);
            Assert.True((lens.LogProbs[1] - reference).abs().max().item<float>() < 1e-5);
        }
    }

    [Fact]
    public void Ranks_and_top_tokens_agree_with_the_log_probs()
    {
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(1, 6, model.Config.DVocab);
        using var lens = SharpLens.Techniques.LogitLens.Run(model, tokens);
        var top = lens.TopTokens(row: 2, position: 3, k: 3);
        Assert.Equal(3, top.Count);
        Assert.True(top[0].Probability >= top[1].Probability && top[1].Probability >= top[2].Probability);
        var targets = full([1, 6], (long)top[1].Token);
        Assert.Equal(1, lens.TargetRanks(targets)[2, 0, 3].item<long>());
        Assert.Equal(Math.Log(top[1].Probability), lens.TargetLogProbs(targets)[2, 0, 3].item<float>(), 4);
    }
}

[Collection(TechniqueOrganismCollection.Name)]
public class LogitLensInductionTests(SmallInductionOrganism small, ITestOutputHelper output)
{
    [Fact]
    public void Correct_next_token_rank_improves_in_the_last_layer_on_the_repeated_half()
    {
        var settings = SmallInductionOrganism.Settings;
        var model = small.Organism.Model;
        var tokens = InductionOrganism.RepeatedSequences(settings, 64, new Generator(21)); // [batch, 2n + 1]
        using var lens = SharpLens.Techniques.LogitLens.Run(model, tokens);
        int n = settings.HalfLength;
        // Position t predicts token t + 1; on the repeated half (targets n + 2 … 2n) the answer is known from the first copy.
        var next = cat([tokens[.., 1..], zeros([tokens.shape[0], 1], ScalarType.Int64)], 1); // [batch, 2n + 1]
        var ranks = lens.TargetRanks(next)[.., .., (n + 1)..(2 * n)].to(ScalarType.Float64); // [rows, batch, repeated positions]
        var meanRank = ranks.mean([1, 2]).data<double>().ToArray();
        for (int row = 0; row < meanRank.Length; row++) output.WriteLine($"{lens.RowNames[row],-24} mean rank of the correct next token {meanRank[row]:0.00}");

        double beforeLast = meanRank[^2], final = meanRank[^1];
        Assert.True(final < 1.0, $"final output: mean rank {final:0.00}");
        Assert.True(beforeLast > 5 * Math.Max(final, 0.1) && beforeLast > 5, $"resid_pre of the last layer: mean rank {beforeLast:0.00}, output {final:0.00}");
    }
}
