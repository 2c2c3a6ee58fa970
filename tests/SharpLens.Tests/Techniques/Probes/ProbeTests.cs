using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Probes;

public class ProbeTests
{
    /// <summary>Two Gaussian blobs in 10 dimensions, 6σ apart along a random direction: linearly separable.</summary>
    static (Tensor X, Tensor Y, Tensor Axis) Separable(int n, long seed)
    {
        var g = new Generator((ulong)seed);
        var axis = randn([10], generator: g);
        axis /= axis.norm();
        var y = randint(0, 2, [n], generator: g, dtype: ScalarType.Int64);
        var x = randn([n, 10], generator: g) * 0.5 + (y.to(ScalarType.Float32) * 2 - 1).unsqueeze(1) * 3 * axis + 5; // offset: the bias must be learned
        return (x, y, axis);
    }

    [Fact]
    public void Logistic_probe_separates_linearly_separable_data_perfectly()
    {
        var (x, y, axis) = Separable(300, 1);
        var result = ProbeSweep.Fit("synthetic", x, y, ProbeKind.Logistic, new ProbeSettings { Seed = 3 });
        Assert.Equal(1.0, result.TrainAccuracy);
        Assert.Equal(1.0, result.TestAccuracy);
        Assert.Equal(1.0, result.TestAuroc);
        // Separable data only fixes the direction up to the margin, so it need only point the planted way.
        var d = result.Probe.Direction();
        Assert.True((d / d.norm()).dot(axis).item<float>() > 0.5);
    }

    [Fact]
    public void Logistic_probe_recovers_the_planted_direction_of_overlapping_classes()
    {
        // Two isotropic Gaussians 2σ apart: the Bayes-optimal linear read-out is the axis between them.
        var g = new Generator(9);
        var axis = randn([10], generator: g);
        axis /= axis.norm();
        var y = randint(0, 2, [3000], generator: g, dtype: ScalarType.Int64);
        var x = randn([3000, 10], generator: g) + (y.to(ScalarType.Float32) * 2 - 1).unsqueeze(1) * axis;
        var result = ProbeSweep.Fit("synthetic", x, y, ProbeKind.Logistic, new ProbeSettings { Seed = 1 });
        var d = result.Probe.Direction();
        float cosine = (d / d.norm()).dot(axis).item<float>();
        Assert.True(cosine > 0.95, $"cosine with the planted axis {cosine:0.000}");
        // Bayes accuracy is Φ(1) ≈ 0.841.
        Assert.InRange(result.TestAccuracy, 0.80, 0.88);
    }

    [Fact]
    public void Mean_difference_probe_separates_linearly_separable_data_perfectly()
    {
        var (x, y, axis) = Separable(300, 2);
        var result = ProbeSweep.Fit("synthetic", x, y, ProbeKind.MeanDifference, new ProbeSettings { Seed = 3 });
        Assert.Equal(1.0, result.TestAccuracy);
        var d = result.Probe.Direction();
        Assert.True((d / d.norm()).dot(axis).item<float>() > 0.95);
    }

    [Fact]
    public void Multinomial_probe_classifies_three_separable_classes()
    {
        var g = new Generator(4);
        var centres = randn([3, 8], generator: g) * 4; // [class, d]
        var y = randint(0, 3, [300], generator: g, dtype: ScalarType.Int64);
        var x = centres.index_select(0, y) + randn([300, 8], generator: g) * 0.3;
        var result = ProbeSweep.Fit("synthetic", x, y, ProbeKind.Logistic, new ProbeSettings { Seed = 1 });
        Assert.Equal(3, result.Probe.Classes);
        Assert.Equal(1.0, result.TestAccuracy);
        Assert.Null(result.TestAuroc);
    }

    [Fact]
    public void Probe_on_unrelated_labels_stays_near_chance()
    {
        var g = new Generator(5);
        var x = randn([400, 16], generator: g);
        var y = randint(0, 2, [400], generator: g, dtype: ScalarType.Int64);
        var result = ProbeSweep.Fit("noise", x, y, ProbeKind.Logistic, new ProbeSettings { Seed = 1 });
        Assert.InRange(result.TestAccuracy, 0.35, 0.65);
    }

    [Fact]
    public void Auroc_is_one_for_a_perfect_scorer_zero_for_a_reversed_one_and_half_for_ties()
    {
        double[] scores = [0.1, 0.4, 0.35, 0.8, 0.9];
        long[] labels = [0, 0, 0, 1, 1];
        Assert.Equal(1.0, ProbeMetrics.Auroc(scores, labels));
        Assert.Equal(0.0, ProbeMetrics.Auroc([.. scores.Select(s => -s)], labels));
        Assert.Equal(0.5, ProbeMetrics.Auroc([1, 1, 1, 1, 1], labels));
        // One positive below one negative: 5 of the 6 pairs are ordered right.
        Assert.Equal(5.0 / 6, ProbeMetrics.Auroc([0.1, 0.5, 0.35, 0.4, 0.9], labels), 12);
    }

    [Fact]
    public void Train_test_split_is_seeded_disjoint_and_complete()
    {
        var (train, test) = ProbeMetrics.TrainTestSplit(100, 0.25, 7);
        var (train2, test2) = ProbeMetrics.TrainTestSplit(100, 0.25, 7);
        var (_, test3) = ProbeMetrics.TrainTestSplit(100, 0.25, 8);
        Assert.Equal(25, test.Length);
        Assert.Equal(train, train2);
        Assert.Equal(test, test2);
        Assert.NotEqual(test, test3);
        Assert.Equal(Enumerable.Range(0, 100).Select(i => (long)i), train.Concat(test).Order());
    }
}
