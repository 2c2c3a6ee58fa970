using SharpLens.Grokking;
using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Grokking;

/// <summary>Trains the fast variant once (about half a minute) and analyses it; shared by the tests below.</summary>
public sealed class GrokkedFastModel : IDisposable
{
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"sharplens-grok-{Guid.NewGuid():N}");
    public ModularAdditionSettings Settings { get; } = ModularAdditionSettings.Fast;
    public ModularAddition Data { get; }
    public HookedTransformer Model { get; }
    public TrainingRecord Record { get; }
    public GrokkingAnalysis Analysis { get; }

    public GrokkedFastModel()
    {
        Data = new ModularAddition(Settings);
        (Model, Record) = GrokkingTraining.TrainOrResume(Settings, Data, Folder);
        Analysis = GrokkingAnalysis.Run(Settings, Data, Model, Record, Path.Combine(Folder, GrokkingTraining.CheckpointsFolder));
    }

    public void Dispose()
    {
        Model.Dispose();
        Data.Dispose();
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}

public class GrokkingTests(GrokkedFastModel run) : IClassFixture<GrokkedFastModel>
{
    [Fact]
    public void Fast_variant_groks_after_memorising()
    {
        Assert.True(run.Analysis.Final.TestAccuracy >= 0.95, $"test accuracy {run.Analysis.Final.TestAccuracy:P2}");
        Assert.Equal(1.0, run.Analysis.Final.TrainAccuracy);
        Assert.NotNull(run.Analysis.GrokStep);
        // Memorisation first: at the first checkpoint the training loss is far below the test loss.
        var first = run.Analysis.Progress[0];
        Assert.True(first.TestLoss > 20 * first.TrainLoss, $"step {first.Step}: train {first.TrainLoss:0.0000}, test {first.TestLoss:0.0000}");
    }

    [Fact]
    public void A_sparse_set_of_key_frequencies_holds_most_of_the_embedding_norm()
    {
        int frequencies = FourierBasis.Frequencies(run.Settings.P);
        Assert.InRange(run.Analysis.KeyFrequencies.Length, 1, frequencies / 2);
        Assert.True(run.Analysis.KeyFrequencyNormShare > 0.8, $"share {run.Analysis.KeyFrequencyNormShare:P1} for {run.Analysis.KeyFrequencies.Length} of {frequencies} frequencies");
    }

    [Fact]
    public void Restricted_loss_with_only_the_key_frequencies_is_close_to_the_full_loss()
    {
        // Threshold: restricted loss within 0.01 nats of the full loss (both on all p² pairs); the paper finds it even lower.
        var f = run.Analysis.Final;
        Assert.True(f.RestrictedLoss < f.FullLoss + 0.01, $"restricted {f.RestrictedLoss:0.00e0} vs full {f.FullLoss:0.00e0}");
    }

    [Fact]
    public void Excluding_the_key_frequencies_destroys_performance_on_the_training_data()
    {
        var f = run.Analysis.Final;
        Assert.True(f.ExcludedLoss > 1.0 && f.ExcludedLoss > 100 * f.TrainLoss, $"excluded {f.ExcludedLoss:0.000} vs train {f.TrainLoss:0.00e0}");
    }

    [Fact]
    public void Logits_are_mostly_cosines_of_a_plus_b_minus_c_and_neurons_cluster_by_frequency()
    {
        Assert.True(run.Analysis.CosineExplained > 0.8, $"explained {run.Analysis.CosineExplained:P1}");
        Assert.All(run.Analysis.Neurons.Clusters().Take(run.Analysis.KeyFrequencies.Length),
            c => Assert.Contains(c.Frequency, run.Analysis.KeyFrequencies));
    }

    [Fact]
    public void A_checkpoint_round_trips_to_identical_logits()
    {
        var last = TrainingCheckpoint.List(Path.Combine(run.Folder, GrokkingTraining.CheckpointsFolder))[^1];
        Assert.Equal(run.Settings.Steps, last.Step);
        using var loaded = last.LoadModel();
        using var _ = no_grad();
        var expected = run.Model.Run(run.Data.AllTokens);
        var actual = loaded.Run(run.Data.AllTokens);
        Assert.True(expected.eq(actual).all().item<bool>(), "logits differ after save and load");
    }
}

public class GrokkingPiecesTests
{
    [Fact]
    public void Fourier_basis_is_orthonormal()
    {
        foreach (int p in new[] { 5, 31, 113 })
        {
            var f = FourierBasis.Create(p);
            Assert.True(f.matmul(f.t()).allclose(eye(p, dtype: ScalarType.Float64), atol: 1e-10), $"p = {p}");
        }
        Assert.Equal("cos 3", FourierBasis.Name(5));
        Assert.Equal("sin 3", FourierBasis.Name(6));
    }

    [Fact]
    public void Gini_is_zero_for_equal_values_and_one_minus_one_over_n_for_a_single_one()
    {
        Assert.Equal(0, Gini.Of([2, 2, 2, 2]), 12);
        Assert.Equal(0.75, Gini.Of([0, 0, 5, 0]), 12);
        // [1, 2, 3, 4]: Σ (2i − n − 1) xᵢ = −3·1 − 1·2 + 1·3 + 3·4 = 10; 10 / (4 · 10) = 0.25.
        Assert.Equal(0.25, Gini.Of([4, 1, 3, 2]), 12);
    }

    [Fact]
    public void Key_frequencies_are_found_from_a_planted_embedding()
    {
        // An embedding built from frequencies 4 and 9 only: the analysis must name exactly those, holding all the norm.
        const int p = 31;
        var settings = ModularAdditionSettings.Fast;
        using var model = new HookedTransformer(settings.ModelConfig(), seed: 1);
        var x = arange(p, dtype: ScalarType.Float64);
        var columns = zeros(p, settings.DModel, dtype: ScalarType.Float64);
        columns[.., 0] = (x * FourierBasis.Omega(4, p)).cos();
        columns[.., 1] = (x * FourierBasis.Omega(4, p)).sin();
        columns[.., 2] = (x * FourierBasis.Omega(9, p)).cos();
        using (no_grad()) model.embed.W_E[..p].copy_(columns.to(ScalarType.Float32));
        var norms = FourierAnalysis.EmbeddingNorms(model, p);
        var keys = FourierAnalysis.KeyFrequencies(norms);
        Assert.Equal([4, 9], keys);
        Assert.Equal(1.0, FourierAnalysis.NormShare(norms, keys), 6);
    }

    [Fact]
    public void Resumed_run_continues_from_the_saved_step_and_matches_an_uninterrupted_run()
    {
        var settings = ModularAdditionSettings.Fast with { Steps = 12, CheckpointEvery = 6, EvaluateEvery = 6 };
        using var data = new ModularAddition(settings);
        string straight = Path.Combine(Path.GetTempPath(), $"sharplens-grok-a-{Guid.NewGuid():N}");
        string resumed = Path.Combine(Path.GetTempPath(), $"sharplens-grok-b-{Guid.NewGuid():N}");
        try
        {
            var (a, recordA) = GrokkingTraining.TrainOrResume(settings, data, straight);
            using (a)
            {
                var (half, _) = GrokkingTraining.TrainOrResume(settings with { Steps = 6 }, data, resumed);
                half.Dispose();
                var (b, recordB) = GrokkingTraining.TrainOrResume(settings, data, resumed);
                using (b)
                {
                    Assert.Equal(6, recordB.ResumedFrom);
                    Assert.Equal(recordA.Losses, recordB.Losses);
                    using var _ = no_grad();
                    Assert.True(a.Run(data.AllTokens).eq(b.Run(data.AllTokens)).all().item<bool>(), "weights differ after resuming");
                }
            }
        }
        finally
        {
            foreach (var d in new[] { straight, resumed }) if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
        }
    }
}
