using SharpLens.Models;
using SharpLens.Techniques;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques;

/// <summary>Attention summaries and head detection on generated sequences, against models whose attention is known.</summary>
public class AttentionAnalysisTests
{
    [Fact]
    public void Heads_that_cannot_score_attend_uniformly_and_the_summary_says_so()
    {
        // W_Q = b_Q = 0 makes every score 0, so query q spreads 1/(q + 1) over its q + 1 visible keys.
        using var model = TestModels.RandomModel();
        using (no_grad())
            foreach (var block in model.blocks) { block.attn.W_Q.zero_(); block.attn.b_Q.zero_(); }
        const int pos = 10;
        var batches = new[] { TestModels.RandomTokens(3, pos, 50), TestModels.RandomTokens(2, pos, 50, seed: 8) };
        var summary = AttentionSummary.Compute(model, batches);

        var queries = Enumerable.Range(1, pos - 1);
        double share = queries.Average(q => 1.0 / (q + 1)), entropy = queries.Average(q => Math.Log(q + 1));
        Assert.Equal(model.Config.NLayers * model.Config.NHeads, summary.Rows.Count);
        foreach (var row in summary.Rows)
        {
            Assert.Equal(share, row.ToBos, 5);
            Assert.Equal(share, row.ToSelf, 5);
            Assert.Equal(share, row.ToPrevious, 5);
            Assert.Equal(entropy, row.Entropy, 5);
        }
        var (columns, cells) = summary.ToTable();
        Assert.Equal(columns.Length, cells[0].Length);
        Assert.Equal("1.3", cells[^1][0]);
    }

    [Fact]
    public void Scores_pooled_over_batches_equal_scores_on_the_whole_batch()
    {
        using var model = TestModels.RandomModel();
        var config = model.Config with { BosTokenId = 0 };
        var tokens = HeadDetectors.RepeatedRandomTokens(config, 8, 5, new Generator(3)); // [5, 17]
        var whole = HeadDetectors.ScoreHeads(model, tokens);
        var pooled = HeadDetectors.ScoreHeads(model, [tokens[..2], tokens[2..]]);
        foreach (var (a, b) in new[] { (whole.PreviousToken, pooled.PreviousToken), (whole.DuplicateToken, pooled.DuplicateToken), (whole.Induction, pooled.Induction) })
            for (int l = 0; l < 2; l++)
                for (int h = 0; h < 4; h++) Assert.Equal(a[l, h], b[l, h], 6);
    }

    [Fact]
    public void Repeated_random_tokens_start_with_bos_repeat_their_half_and_never_draw_bos()
    {
        var config = TestModels.Tiny() with { BosTokenId = 7, DVocab = 9 };
        var tokens = HeadDetectors.RepeatedRandomTokens(config, halfLength: 11, batch: 40, new Generator(1)); // [40, 23]
        Assert.Equal(new long[] { 40, 23 }, tokens.shape);
        Assert.True((tokens[.., 0] == 7).all().item<bool>());
        Assert.True((tokens[.., 1..12] == tokens[.., 12..]).all().item<bool>());
        Assert.False((tokens[.., 1..] == 7).any().item<bool>());
        Assert.True((tokens >= 0).all().item<bool>() && (tokens < 9).all().item<bool>());
        Assert.True((tokens[.., 1..] == 8).any().item<bool>(), "the id above BOS is never drawn");
        var error = Assert.Throws<ArgumentException>(() => HeadDetectors.RepeatedRandomTokens(config, 12, 1, new Generator(1)));
        Assert.Contains("at most 11", error.Message);
    }
}

/// <summary>Head detection and attention summaries on the small induction organism (trained once for the collection).</summary>
[Collection(TechniqueOrganismCollection.Name)]
public class InductionAttentionTests(SmallInductionOrganism small, ITestOutputHelper output)
{
    [Fact]
    public void Detector_on_generated_sequences_finds_the_previous_token_head_in_layer_0_and_induction_in_layer_1()
    {
        var model = small.Organism.Model;
        var batches = Enumerable.Range(0, 3).Select(i => HeadDetectors.RepeatedRandomTokens(model.Config, 12, 16, new Generator((ulong)(50 + i))));
        var scores = HeadDetectors.ScoreHeads(model, batches);
        var previous = HeadScores.Ranked(scores.PreviousToken)[0];
        var induction = HeadScores.Ranked(scores.Induction)[0];
        output.WriteLine($"top previous-token head {previous}, top induction head {induction}");
        Assert.Equal(0, previous.Head.Layer);
        // Uniform attention would put 1/(q + 1) on the previous token; the head must beat that twice over.
        double uniform = Enumerable.Range(1, 24).Average(q => 1.0 / (q + 1));
        Assert.True(previous.Score >= 2 * uniform, $"top previous-token head {previous}; uniform attention scores {uniform:0.00}");
        Assert.Equal(1, induction.Head.Layer);
        Assert.True(induction.Score >= 0.4, $"top induction head {induction}");
    }

    [Fact]
    public void Summary_attention_to_the_previous_token_equals_the_previous_token_score()
    {
        // On sequences of 2n + 1 tokens every query from 1 on has exactly one previous-token target: the two measures coincide.
        var model = small.Organism.Model;
        var tokens = HeadDetectors.RepeatedRandomTokens(model.Config, 12, 16, new Generator(5));
        var scores = HeadDetectors.ScoreHeads(model, tokens);
        var summary = AttentionSummary.Compute(model, [tokens]);
        foreach (var row in summary.Rows)
        {
            output.WriteLine(row.ToString());
            Assert.Equal(scores.PreviousToken[row.Head.Layer, row.Head.Head], row.ToPrevious, 5);
        }
    }
}
