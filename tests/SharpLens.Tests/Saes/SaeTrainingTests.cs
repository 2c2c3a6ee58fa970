using SharpLens.Saes;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes;

/// <summary>
/// Each architecture, trained on a toy model of superposition (64 sparse features with known directions in 32
/// dimensions), recovers the true feature directions at an L0 near the true one.
/// </summary>
public class SaeTrainingTests(ITestOutputHelper output)
{
    const int Features = 64, Dims = 32, DSae = 128, Batch = 512;
    const double P = 0.04; // true L0 = 2.56

    static SaeTrainingSettings Base => new()
    {
        Steps = 1000, LearningRate = 3e-3, LrWarmupSteps = 50, LrDecaySteps = 200, SparsityWarmupSteps = 200,
        DeadFeatureWindow = 200, ReportEvery = 250,
    };

    public static TheoryData<SaeArchitecture> Architectures =>
        [SaeArchitecture.Standard, SaeArchitecture.TopK, SaeArchitecture.BatchTopK, SaeArchitecture.JumpReLU, SaeArchitecture.Gated];

    static (SaeConfig, SaeTrainingSettings) Recipe(SaeArchitecture architecture) => architecture switch
    {
        SaeArchitecture.Standard => (new SaeConfig(architecture, Dims, DSae), Base with { L1Coefficient = 1.0, ResampleEvery = 400 }),
        SaeArchitecture.TopK => (new SaeConfig(architecture, Dims, DSae) { K = 4 }, Base),
        SaeArchitecture.BatchTopK => (new SaeConfig(architecture, Dims, DSae) { K = 3 }, Base),
        SaeArchitecture.JumpReLU => (new SaeConfig(architecture, Dims, DSae),
            Base with { L0Coefficient = 0.1, JumpReLUInitThreshold = 0.1, JumpReLUBandwidth = 0.05 }),
        SaeArchitecture.Gated => (new SaeConfig(architecture, Dims, DSae), Base with { L1Coefficient = 1.0 }),
        _ => throw new ArgumentOutOfRangeException(nameof(architecture)),
    };

    [Theory]
    [MemberData(nameof(Architectures))]
    public void Sae_recovers_the_true_features_of_a_toy_model_of_superposition(SaeArchitecture architecture)
    {
        using var threads = new OneThread();
        using var scope = torch.NewDisposeScope();
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        var (config, settings) = Recipe(architecture);
        using var sae = new Sae(config, seed: 2);
        using var trainer = new SaeTrainer(sae, settings);
        var reports = new List<SaeTrainingProgress>();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        trainer.Train(step => toy.Sample(Batch, step), new Collect(reports));

        // Inference (BatchTopK: its learned threshold, as it would be saved) on fresh data.
        var x = toy.Sample(4096, 1_000_000);
        var features = sae.Encode(x);
        var recon = sae.Forward(x);
        double l0 = features.gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>();
        double ev = 1 - ((x - recon).pow(2).sum() / (x - x.mean([0], keepdim: true)).pow(2).sum()).item<float>();
        double cosine = toy.MeanBestCosine(sae.W_dec);
        output.WriteLine($"{architecture}: mean best cosine {cosine:F3}, L0 {l0:F2} (true {toy.TrueL0:F2}), explained variance {ev:F3}, {watch.Elapsed.TotalSeconds:F1} s");
        foreach (var r in reports) output.WriteLine($"  step {r.Step}: loss {r.Loss:F4} mse {r.Mse:F4} L0 {r.L0:F2} EV {r.ExplainedVariance:F3} dead {r.DeadFeatures}");

        Assert.True(cosine >= 0.9, $"mean best cosine {cosine:F3} < 0.9");
        Assert.InRange(l0, 0.5 * toy.TrueL0, 2.0 * toy.TrueL0);
        Assert.True(ev > 0.6, $"explained variance {ev:F3}");
    }

    [Theory]
    [InlineData(SaeArchitecture.Standard)]
    [InlineData(SaeArchitecture.TopK)]
    [InlineData(SaeArchitecture.BatchTopK)]
    [InlineData(SaeArchitecture.JumpReLU)]
    [InlineData(SaeArchitecture.Gated)]
    public void Training_resumed_from_a_checkpoint_matches_training_straight_through(SaeArchitecture architecture)
    {
        using var threads = new OneThread();
        using var scope = torch.NewDisposeScope();
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        var (config, settings) = Recipe(architecture);
        // A short dead-feature window and resampling inside the run, so their state has to survive the checkpoint too.
        settings = settings with { Steps = 40, DeadFeatureWindow = 5, ResampleEvery = architecture == SaeArchitecture.Standard ? 30 : 0, LrDecaySteps = 10 };
        Tensor Batch(int step) => toy.Sample(64, step);

        using var straight = new Sae(config, seed: 2);
        using (var trainer = new SaeTrainer(straight, settings)) trainer.Train(Batch);

        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-ckpt-{Guid.NewGuid():N}");
        try
        {
            using (var first = new Sae(config, seed: 2))
            using (var trainer = new SaeTrainer(first, settings))
            {
                trainer.Train(Batch, stopAtStep: 20);
                trainer.SaveCheckpoint(folder);
            }
            using var resumed = SaeTrainer.Resume(folder, settings);
            Assert.Equal(20, resumed.Step);
            resumed.Train(Batch);
            Assert.Equal(40, resumed.Step);
            foreach (var ((name, a), (_, b)) in straight.named_parameters().Zip(resumed.Sae.named_parameters()))
                Assert.True(a.eq(b).all().item<bool>(), $"{name} differs by {(a - b).abs().max().item<float>()} after resuming");
            resumed.Sae.Dispose();
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Progress_reports_l0_mse_and_explained_variance_on_schedule()
    {
        using var threads = new OneThread();
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        using var sae = new Sae(new SaeConfig(SaeArchitecture.TopK, Dims, DSae) { K = 4 }, seed: 2);
        using var trainer = new SaeTrainer(sae, Base with { Steps = 30, ReportEvery = 10 });
        var reports = new List<SaeTrainingProgress>();
        trainer.Train(step => toy.Sample(64, step), new Collect(reports));
        Assert.Equal([10, 20, 30], reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.Equal(4.0, r.L0, 6)); // TopK keeps exactly k
        Assert.All(reports, r => Assert.InRange(r.ExplainedVariance, -1.0, 1.0));
        Assert.True(reports[^1].Mse < reports[0].Mse, "MSE should fall");
    }

    [Fact]
    public void Transcoder_learns_the_sparse_map_from_one_space_to_another()
    {
        using var threads = new OneThread();
        using var scope = torch.NewDisposeScope();
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        // The same sparse features write to other directions in a 24-dimensional output space.
        var outDirections = torch.randn(Features, 24, generator: new Generator(9));
        outDirections = outDirections / outDirections.norm(1, keepdim: true); // [n_features, 24]
        (Tensor, Tensor?) Pair(int step)
        {
            var a = toy.SampleActivations(Batch, step);
            return (a.matmul(toy.Directions), a.matmul(outDirections));
        }
        using var transcoder = new Sae(new SaeConfig(SaeArchitecture.Transcoder, Dims, DSae) { DOut = 24, ApplyBDecToInput = false }, seed: 2);
        using var trainer = new SaeTrainer(transcoder, Base with { L1Coefficient = 1.0 });
        trainer.Train(Pair);

        var (x, y) = Pair(1_000_000);
        var r = SaeEvaluation.Reconstruction(transcoder, x, y);
        double cosine = ToySuperposition.MeanBestCosine(outDirections, transcoder.W_dec);
        output.WriteLine($"Transcoder: mean best cosine {cosine:F3}, L0 {r.L0:F2} (true {toy.TrueL0:F2}), explained variance {r.ExplainedVariance:F3}");
        Assert.True(cosine >= 0.9, $"mean best cosine {cosine:F3}");
        Assert.InRange(r.L0, 0.5 * toy.TrueL0, 2.0 * toy.TrueL0);
        Assert.True(r.ExplainedVariance > 0.6, $"explained variance {r.ExplainedVariance:F3}");
    }

    [Fact]
    public void Expected_average_scaling_trains_on_rescaled_inputs_and_is_folded_into_the_weights()
    {
        using var threads = new OneThread();
        using var scope = torch.NewDisposeScope();
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        Tensor Loud(int step) => 10 * toy.Sample(Batch, step); // activations far from norm √d_in
        using var sae = new Sae(new SaeConfig(SaeArchitecture.TopK, Dims, DSae) { K = 4, NormalizeActivations = ActivationNormalization.ExpectedAverageOnlyIn }, seed: 2);
        using var trainer = new SaeTrainer(sae, Base with { Steps = 500 });
        trainer.Train(Loud);

        var first = Loud(0);
        Assert.Equal(Math.Sqrt(Dims) / first.norm(-1).mean().item<float>(), trainer.NormScalingFactor!.Value, 6);
        Assert.Equal(ActivationNormalization.None, sae.Config.NormalizeActivations);
        var x = Loud(1_000_000);
        var r = SaeEvaluation.Reconstruction(sae, x); // unscaled inputs: only right if the factor was folded in
        output.WriteLine($"Folded: explained variance {r.ExplainedVariance:F3}, L0 {r.L0:F2}, cosine {toy.MeanBestCosine(sae.W_dec):F3}");
        Assert.True(r.ExplainedVariance > 0.8, $"explained variance {r.ExplainedVariance:F3}");
    }

    [Fact]
    public void Untrained_sae_does_not_pass_the_recovery_bar()
    {
        using var toy = new ToySuperposition(Features, Dims, P, seed: 1);
        using var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, Dims, DSae), seed: 2);
        Assert.True(toy.MeanBestCosine(sae.W_dec) < 0.9);
    }

    /// <summary>One libtorch thread while training: on a shared 2-core machine, more threads only wait on each other.</summary>
    sealed class OneThread : IDisposable
    {
        readonly int _before = torch.get_num_threads();
        public OneThread() => torch.set_num_threads(1);
        public void Dispose() => torch.set_num_threads(_before);
    }

    sealed class Collect(List<SaeTrainingProgress> into) : IProgress<SaeTrainingProgress>
    {
        public void Report(SaeTrainingProgress value) => into.Add(value);
    }
}
