using SharpLens.Hooks;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>An attention pattern of one head on one sequence: [query, key] with the tokens it was computed on.</summary>
public sealed record HeadPattern(HeadId Head, int[] Tokens, float[,] Pattern);

/// <summary>What the induction organism does, measured on fresh repeated sequences.</summary>
/// <param name="LossByPosition">Mean loss per target position 1 … 2n (entry t − 1 predicts token t).</param>
/// <param name="FirstHalfLoss">Mean loss on targets 1 … n: the random half.</param>
/// <param name="RepeatedHalfLoss">Mean loss on targets n + 1 … 2n: the repeat.</param>
/// <param name="InductionHeads">Heads whose induction score is at least <see cref="InductionFindings.HeadThreshold"/>, strongest first.</param>
public sealed record InductionFindings(
    int HalfLength,
    HeadScores Scores,
    double[] LossByPosition,
    double FirstHalfLoss,
    double RepeatedHalfLoss,
    IReadOnlyList<ScoredHead> InductionHeads,
    ScoredHead TopInductionHead,
    ScoredHead TopPreviousTokenHead,
    ScoredHead TopDuplicateTokenHead,
    IReadOnlyList<HeadPattern> Patterns)
{
    /// <summary>A head counts as an induction head when it puts at least this much attention on the induction target.</summary>
    public const double HeadThreshold = 0.4;

    /// <summary>How many times lower the loss is on the repeat than on the random half.</summary>
    public double LossRatio => FirstHalfLoss / RepeatedHalfLoss;

    /// <summary>
    /// Scores the organism's heads and losses on <paramref name="batch"/> fresh sequences (drawn with
    /// <paramref name="seed"/>, independent of training), and keeps the patterns of the top heads on the first one.
    /// </summary>
    public static InductionFindings Measure(InductionOrganism organism, int batch = 64, long seed = 12345)
    {
        using var scope = NewDisposeScope();
        var settings = organism.Settings;
        var model = organism.Model;
        using var generator = new Generator((ulong)seed);
        var tokens = InductionOrganism.RepeatedSequences(settings, batch, generator); // [batch, 2n + 1]

        var scores = HeadDetectors.ScoreHeads(model, tokens);
        var losses = PerPositionLoss.Compute(model, tokens);
        int n = settings.HalfLength;
        double first = PerPositionLoss.MeanOver(losses, 1, n), repeated = PerPositionLoss.MeanOver(losses, n + 1, 2 * n);

        var topInduction = HeadScores.Ranked(scores.Induction)[0];
        var topPrevious = HeadScores.Ranked(scores.PreviousToken)[0];
        var topDuplicate = HeadScores.Ranked(scores.DuplicateToken)[0];
        var inductionHeads = HeadScores.Ranked(scores.Induction).Where(h => h.Score >= HeadThreshold).ToList();

        var shown = new[] { topInduction.Head, topPrevious.Head, topDuplicate.Head }.Distinct().ToList();
        var patterns = PatternsOf(organism, tokens[0..1], shown);
        return new InductionFindings(n, scores, losses, first, repeated, inductionHeads, topInduction, topPrevious, topDuplicate, patterns);
    }

    static List<HeadPattern> PatternsOf(InductionOrganism organism, Tensor tokens, List<HeadId> heads)
    {
        var names = heads.Select(h => ActivationCache.ActName("pattern", h.Layer)).Distinct().ToList();
        using var _ = no_grad();
        var (_, cache) = organism.Model.RunWithCache(tokens, names);
        using (cache)
        {
            int[] ids = [.. tokens[0].to(ScalarType.Int32).data<int>()];
            return [.. heads.Select(h =>
            {
                var pattern = cache["pattern", h.Layer][0, h.Head].cpu().to(ScalarType.Float32); // [query, key]
                int pos = (int)pattern.shape[0];
                var values = pattern.data<float>().ToArray();
                var grid = new float[pos, pos];
                Buffer.BlockCopy(values, 0, grid, 0, values.Length * sizeof(float));
                return new HeadPattern(h, ids, grid);
            })];
        }
    }
}
