using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Organisms;

/// <summary>The small induction organism of the tests, trained once per test process (a few seconds to a few tens).</summary>
public sealed class SmallInductionOrganism : IDisposable
{
    public static readonly InductionSettings Settings = new()
    {
        Vocab = 64, HalfLength = 12, MinRepeatLength = 4, DModel = 32, NHeads = 2, Norm = Normalization.None,
        Steps = 1500, BatchSize = 32, LearningRate = 1e-2, Seed = 2,
    };

    /// <summary>
    /// Trained once per test process (the first class that asks trains it; the training is the slow part), in a temporary
    /// cache removed when the process exits. The trained instance is this fixture's; other classes load their own copy
    /// of it from <see cref="CacheRoot"/> (<see cref="LoadedSmallInductionOrganism"/>), so no model is shared between
    /// classes that run in parallel.
    /// </summary>
    static readonly Lazy<(string CacheRoot, InductionOrganism Organism, InductionFindings Findings)> Trained = new(() =>
    {
        string root = Path.Combine(Path.GetTempPath(), $"sharplens-test-cache-{Guid.NewGuid():N}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); } catch (IOException) { } };
        var organism = InductionOrganism.TrainOrLoad(Settings, root);
        return (root, organism, InductionFindings.Measure(organism));
    }, LazyThreadSafetyMode.ExecutionAndPublication);

    public string CacheRoot => Trained.Value.CacheRoot;
    public InductionOrganism Organism => Trained.Value.Organism;
    public InductionFindings Findings => Trained.Value.Findings;

    public SmallInductionOrganism() => _ = Trained.Value;

    public void Dispose() { } // the trained organism lives as long as the process: other classes load from its cache
}

/// <summary>The small induction organism, this class's own copy, loaded from the one training of <see cref="SmallInductionOrganism"/>.</summary>
public sealed class LoadedSmallInductionOrganism : IDisposable
{
    public InductionOrganism Organism { get; } = InductionOrganism.TrainOrLoad(SmallInductionOrganism.Settings, new SmallInductionOrganism().CacheRoot);

    public void Dispose() => Organism.Dispose();
}

/// <summary>Trains one small induction organism for all the tests in this class (a few seconds to a few tens).</summary>
public class InductionOrganismTests(SmallInductionOrganism small) : IClassFixture<SmallInductionOrganism>
{
    [Fact]
    public void Trained_organism_predicts_the_repeat_far_better_than_the_random_half()
    {
        var f = small.Findings;
        Assert.False(small.Organism.FromCache);
        Assert.InRange(f.FirstHalfLoss, Math.Log(SmallInductionOrganism.Settings.Vocab - 1) - 0.3, 6.0); // random half stays near a uniform guess
        Assert.True(f.LossRatio >= 5, $"repeated-half loss {f.RepeatedHalfLoss:0.000} vs random half {f.FirstHalfLoss:0.000}: ratio {f.LossRatio:0.0}");
    }

    [Fact]
    public void Top_induction_head_is_in_layer_1_and_top_previous_token_head_in_layer_0()
    {
        var f = small.Findings;
        Assert.Equal(1, f.TopInductionHead.Head.Layer);
        Assert.True(f.TopInductionHead.Score >= InductionFindings.HeadThreshold, $"top induction head {f.TopInductionHead}");
        Assert.Contains(f.TopInductionHead, f.InductionHeads);
        Assert.Equal(0, f.TopPreviousTokenHead.Head.Layer);
    }

    [Fact]
    public void Cached_organism_loads_back_with_identical_logits()
    {
        using var loaded = InductionOrganism.TrainOrLoad(SmallInductionOrganism.Settings, small.CacheRoot);
        Assert.True(loaded.FromCache);
        Assert.Equal(small.Organism.Training.Losses, loaded.Training.Losses);
        var tokens = InductionOrganism.RepeatedSequences(SmallInductionOrganism.Settings, 4, new Generator(77));
        using var _ = no_grad();
        Assert.Equal(0f, (small.Organism.Model.Run(tokens) - loaded.Model.Run(tokens)).abs().max().item<float>());
    }

    [Fact]
    public void Changed_settings_do_not_reuse_the_cache()
    {
        var other = SmallInductionOrganism.Settings with { Seed = 99 };
        Assert.NotEqual(SmallInductionOrganism.Settings.CacheName, other.CacheName);
        Assert.Null(InductionOrganism.TryLoad(other, small.Organism.CacheFolder!));
        Assert.Empty(Directory.GetDirectories(Path.Combine(small.CacheRoot, "organisms"), "*.tmp-*"));
    }

    [Fact]
    public void Report_is_self_contained_and_names_the_induction_heads()
    {
        string folder = Path.Combine(small.CacheRoot, "tour");
        var summary = InductionTourReport.Summarize(small.Organism, small.Findings, TimeSpan.FromSeconds(1));
        string path = InductionTourReport.Write(folder, small.Organism, small.Findings, summary);
        string html = File.ReadAllText(path);

        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("<script src", html);
        Assert.DoesNotContain("<link", html);
        Assert.Contains("<svg", html);
        Assert.Contains(InductionTourReport.InductionHeadsLine(small.Findings), html);
        Assert.Contains($"Induction heads: {small.Findings.TopInductionHead}", html);

        string json = File.ReadAllText(Path.Combine(folder, InductionTourReport.SummaryFile));
        Assert.Contains("\"loss_repeated_half\"", json);
        Assert.Contains($"\"name\": \"{small.Findings.TopInductionHead.Head}\"", json);
    }
}
