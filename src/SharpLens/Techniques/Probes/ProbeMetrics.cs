using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>How well a probe separates classes.</summary>
public static class ProbeMetrics
{
    /// <summary>Share of predictions equal to the labels.</summary>
    public static double Accuracy(Tensor predicted, Tensor labels)
    {
        using var scope = NewDisposeScope();
        return (predicted.to(ScalarType.Int64).cpu() == labels.to(ScalarType.Int64).cpu()).to(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>
    /// Area under the ROC curve: the chance that a random positive scores above a random negative (ties count half),
    /// computed from ranks (Mann–Whitney U). 1 for a perfect scorer, 0.5 for chance, 0 for a reversed one.
    /// </summary>
    /// <param name="scores">[n] higher means more likely class 1</param>
    /// <param name="labels">[n] 0 or 1</param>
    public static double Auroc(Tensor scores, Tensor labels)
    {
        var s = scores.to(ScalarType.Float64).cpu().data<double>().ToArray();
        var y = labels.to(ScalarType.Int64).cpu().data<long>().ToArray();
        return Auroc(s, y);
    }

    public static double Auroc(double[] scores, long[] labels)
    {
        if (scores.Length != labels.Length) throw new ArgumentException($"{scores.Length} scores but {labels.Length} labels.", nameof(labels));
        long positives = labels.Count(l => l == 1), negatives = labels.Length - positives;
        if (positives == 0 || negatives == 0) throw new ArgumentException("AUROC needs at least one example of each class.", nameof(labels));
        var order = Enumerable.Range(0, scores.Length).OrderBy(i => scores[i]).ToArray();
        var ranks = new double[scores.Length];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && scores[order[j + 1]] == scores[order[i]]) j++;
            double mid = (i + j) / 2.0 + 1; // tied scores share their average rank
            for (int t = i; t <= j; t++) ranks[order[t]] = mid;
            i = j + 1;
        }
        double positiveRankSum = Enumerable.Range(0, scores.Length).Where(i => labels[i] == 1).Sum(i => ranks[i]);
        return (positiveRankSum - positives * (positives + 1) / 2.0) / (positives * (double)negatives);
    }

    /// <summary>A seeded split of 0 … n − 1 into train and test indices.</summary>
    public static (long[] Train, long[] Test) TrainTestSplit(int n, double testFraction, long seed)
    {
        int test = (int)Math.Round(n * testFraction);
        if (test < 1 || test >= n) throw new ArgumentException($"A test fraction of {testFraction} of {n} examples leaves no train or no test set.", nameof(testFraction));
        var indices = Enumerable.Range(0, n).Select(i => (long)i).ToArray();
        new Random((int)seed).Shuffle(indices);
        return (indices[test..], indices[..test]);
    }
}
