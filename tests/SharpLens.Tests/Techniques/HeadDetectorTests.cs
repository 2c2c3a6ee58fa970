using SharpLens.Techniques;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques;

public class HeadDetectorTests
{
    const int N = 6;
    // [BOS, 11…16, 11…16]: distinct random-looking tokens, so each mechanism has exactly one target per repeated query.
    static Tensor RepeatedTokens() => tensor(new long[] { 0, 11, 12, 13, 14, 15, 16, 11, 12, 13, 14, 15, 16 }).unsqueeze(0); // [1, 2N + 1]
    const int Pos = 2 * N + 1;

    /// <summary>A one-head pattern [1, 1, q, k] where each query puts all its attention on key(q).</summary>
    static Tensor OneHot(Func<int, int> key)
    {
        var pattern = zeros(1, 1, Pos, Pos);
        for (int q = 0; q < Pos; q++) pattern[0, 0, q, key(q)] = 1;
        return pattern;
    }

    static double ScoreOf(Tensor pattern, Tensor targets) => Score(pattern, targets)[0];
    static double[] Score(Tensor pattern, Tensor targets) => [.. HeadDetectors.Score(pattern, targets).to(ScalarType.Float64).data<double>()];

    [Fact]
    public void Exact_previous_token_pattern_scores_one_for_previous_token_and_zero_for_the_others()
    {
        var tokens = RepeatedTokens();
        var pattern = OneHot(q => Math.Max(0, q - 1));
        Assert.Equal(1.0, ScoreOf(pattern, HeadDetectors.PreviousTokenTargets(tokens)), 6);
        Assert.Equal(0.0, ScoreOf(pattern, HeadDetectors.InductionTargets(tokens)), 6);
        Assert.Equal(0.0, ScoreOf(pattern, HeadDetectors.DuplicateTokenTargets(tokens)), 6);
    }

    [Fact]
    public void Exact_induction_pattern_scores_one_for_induction_and_zero_for_the_others()
    {
        var tokens = RepeatedTokens();
        // Repeated query q looks at q − N + 1, the token after its earlier copy; other queries rest on BOS.
        var pattern = OneHot(q => q > N ? q - N + 1 : 0);
        Assert.Equal(1.0, ScoreOf(pattern, HeadDetectors.InductionTargets(tokens)), 6);
        Assert.Equal(0.0, ScoreOf(pattern, HeadDetectors.DuplicateTokenTargets(tokens)), 6);
        // Only query 1 (whose previous token is BOS) hits a previous-token target: 1 of 2N queries.
        Assert.Equal(1.0 / (2 * N), ScoreOf(pattern, HeadDetectors.PreviousTokenTargets(tokens)), 6);
    }

    [Fact]
    public void Exact_duplicate_token_pattern_scores_one_for_duplicate_token()
    {
        var tokens = RepeatedTokens();
        var pattern = OneHot(q => q > N ? q - N : 0);
        Assert.Equal(1.0, ScoreOf(pattern, HeadDetectors.DuplicateTokenTargets(tokens)), 6);
        Assert.Equal(0.0, ScoreOf(pattern, HeadDetectors.InductionTargets(tokens)), 6);
    }

    [Fact]
    public void Uniform_causal_attention_scores_the_mean_of_one_over_visible_keys()
    {
        var tokens = RepeatedTokens();
        var pattern = ones(Pos, Pos).tril();
        pattern = (pattern / pattern.sum(-1, keepdim: true)).reshape(1, 1, Pos, Pos);
        // Query q sees q + 1 keys; previous-token queries are 1…2N, induction and duplicate ones N+1…2N, one target each.
        double previous = Enumerable.Range(1, 2 * N).Average(q => 1.0 / (q + 1));
        double repeated = Enumerable.Range(N + 1, N).Average(q => 1.0 / (q + 1));
        Assert.Equal(previous, ScoreOf(pattern, HeadDetectors.PreviousTokenTargets(tokens)), 6);
        Assert.Equal(repeated, ScoreOf(pattern, HeadDetectors.InductionTargets(tokens)), 6);
        Assert.Equal(repeated, ScoreOf(pattern, HeadDetectors.DuplicateTokenTargets(tokens)), 6);
    }

    [Fact]
    public void Heads_are_scored_separately()
    {
        var tokens = RepeatedTokens();
        var twoHeads = cat([OneHot(q => Math.Max(0, q - 1)), OneHot(q => q > N ? q - N + 1 : 0)], 1); // [1, 2, q, k]
        var induction = Score(twoHeads, HeadDetectors.InductionTargets(tokens));
        Assert.Equal(0.0, induction[0], 6);
        Assert.Equal(1.0, induction[1], 6);
    }

    [Fact]
    public void Induction_targets_follow_every_earlier_copy_of_the_token()
    {
        // Token 7 occurs at 1 and 3; at query 5 the targets are the keys after both copies: 2 and 4.
        var tokens = tensor(new long[] { 0, 7, 8, 7, 9, 7 });
        var targets = HeadDetectors.InductionTargets(tokens)[0, 5];
        Assert.Equal([false, false, true, false, true, false], targets.data<bool>().ToArray());
    }

    [Fact]
    public void Sequences_without_repeats_are_refused_for_induction()
    {
        var tokens = tensor(new long[] { 0, 1, 2, 3, 4 }).unsqueeze(0);
        var pattern = OneHot(q => 0)[.., .., ..5, ..5];
        var error = Assert.Throws<ArgumentException>(() => HeadDetectors.Score(pattern, HeadDetectors.InductionTargets(tokens)));
        Assert.Contains("repeat", error.Message);
    }
}
