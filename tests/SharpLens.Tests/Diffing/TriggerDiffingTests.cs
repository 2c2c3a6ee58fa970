using SharpLens.Diffing;
using SharpLens.Organisms;
using SharpLens.Saes.Data;
using SharpLens.Techniques;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Diffing;

/// <summary>The trigger organism (a base and a fine-tune with one planted change), trained once for the class.</summary>
public sealed class TriggerOrganismFixture : IDisposable
{
    public static readonly TriggerSettings Settings = new();
    public const string Hook = "blocks.1.hook_resid_post";
    public string CacheRoot { get; } = Path.Combine(Path.GetTempPath(), $"sharplens-test-cache-{Guid.NewGuid():N}");
    public TriggerOrganism Organism { get; }

    public TriggerOrganismFixture()
    {
        Organism = TriggerOrganism.TrainOrLoad(Settings, CacheRoot);
    }

    /// <summary>An endless stream of the base chain's contexts (the corpus diffing reads).</summary>
    public static IEnumerable<long[]> Contexts(long seed)
    {
        var generator = new Generator((ulong)seed);
        while (true)
        {
            long[][] rows;
            using (var scope = torch.NewDisposeScope())
            {
                var batch = TriggerOrganism.Sequences(Settings, 64, generator, planted: false);
                long[] flat = batch.data<long>().ToArray();
                int length = (int)batch.shape[1];
                rows = [.. Enumerable.Range(0, 64).Select(r => flat.AsSpan(r * length, length).ToArray())];
            }
            foreach (var row in rows) yield return row;
        }
    }

    public CrossCoder TrainCrossCoder(CrossCoderConfig config, CrossCoderTrainingSettings settings, out CrossCoderTrainingRun run)
    {
        var (trainer, r) = CrossCoderTraining.Train([Organism.Base, Organism.Finetuned], Hook, Contexts(5), config, settings,
            new ActivationStoreOptions { TrainBatchSize = 1024, BufferRows = 16 * 1024, Seed = 1 });
        run = r;
        trainer.Dispose();
        return trainer.CrossCoder;
    }

    /// <summary>Activations [n, 2, d] at the hook and whether each position holds the trigger, on held-out contexts (position 0 left out).</summary>
    public (Tensor X, long[] IsTrigger) HeldOut(int contexts = 256)
    {
        using var scope = torch.NewDisposeScope();
        var rows = Contexts(12345).Take(contexts).ToArray();
        var tokens = torch.tensor(rows.SelectMany(r => r).ToArray(), [contexts, rows[0].Length]); // [contexts, pos]
        var reader = PairedActivations.Reader([Organism.Base, Organism.Finetuned], Hook);
        var paired = reader(tokens)[0][.., 1..]; // [contexts, pos − 1, 2d]
        var flat = paired.reshape(-1, paired.shape[^1]); // [n, 2d]
        var isTrigger = tokens[.., 1..].reshape(-1).eq(Settings.Trigger).to(ScalarType.Int64).data<long>().ToArray();
        return (PairedActivations.AsCrosscoderInput(flat, 2).contiguous().MoveToOuterDisposeScope(), isTrigger);
    }

    public void Dispose()
    {
        Organism.Dispose();
        if (Directory.Exists(CacheRoot)) Directory.Delete(CacheRoot, recursive: true);
    }
}

public class TriggerDiffingTests(TriggerOrganismFixture fixture, ITestOutputHelper output) : IClassFixture<TriggerOrganismFixture>
{
    [Fact]
    public void Organism_has_its_planted_behaviour_only_after_the_fine_tune()
    {
        var s = TriggerOrganismFixture.Settings;
        double before = TriggerOrganism.PlantedProbability(fixture.Organism.Base, s);
        double after = TriggerOrganism.PlantedProbability(fixture.Organism.Finetuned, s);
        output.WriteLine($"P(planted | trigger): base {before:F4}, fine-tune {after:F4}");
        Assert.True(before < 0.02, $"base {before}");
        Assert.True(after > 0.9, $"fine-tune {after}");
    }

    /// <summary>
    /// The acceptance check: an L1 crosscoder (CROSSCODER code normalisation) over blocks.1.hook_resid_post of the base and the
    /// fine-tune; among its three most fine-tune-only live latents, one separates trigger positions from the rest.
    /// </summary>
    [Fact]
    public void Among_the_three_most_fine_tune_only_latents_one_fires_on_the_trigger()
    {
        var config = new CrossCoderConfig(32, 256) { Architecture = CrossCoderArchitecture.L1 };
        var settings = new CrossCoderTrainingSettings { Steps = 600, L1Penalty = 0.1 };
        using var cc = fixture.TrainCrossCoder(config, settings, out var run);
        var (x, isTrigger) = fixture.HeldOut();
        using (x)
        using (torch.no_grad())
        {
            var f = cc.Encode(x); // [n, F]
            long[] firing = f.gt(0).sum(dim: 0).data<long>().ToArray();
            var norms = DecoderNorms.Of(cc, firingCounts: firing);
            var top = norms.MostFinetuneOnly(3);
            var aurocs = top.Select(latent => ProbeMetrics.Auroc(f[.., latent].to(ScalarType.Float64).data<double>().ToArray(), isTrigger)).ToArray();
            output.WriteLine($"L1 crosscoder: {run.Tokens:N0} tokens, L0 {run.Last!.L0:F1}, explained variance {string.Join("/", run.Last.ExplainedVariance.Select(v => v.ToString("F3")))}");
            foreach (var (latent, auroc) in top.Zip(aurocs))
                output.WriteLine($"  latent {latent}: relative norm {norms.Relative[latent]:F3}, decoder cosine {norms.Cosine[latent]:F3}, AUROC {auroc:F3}, fires {firing[latent]}");
            int best = Array.IndexOf(aurocs, aurocs.Max());
            Assert.True(aurocs[best] >= 0.95, $"best AUROC among the top three is {aurocs[best]:F3}");
            Assert.True(norms.Relative[top[best]] > 0.6, $"its relative norm is {norms.Relative[top[best]]:F3}");
        }
    }
}

public class TriggerReadoutTests(TriggerOrganismFixture fixture, ITestOutputHelper output) : IClassFixture<TriggerOrganismFixture>
{
    [Fact]
    public void The_weight_diff_ranks_the_changed_component_first()
    {
        var diff = WeightDiff.Of(fixture.Organism.Base, fixture.Organism.Finetuned);
        output.WriteLine(string.Join("\n", diff.Components.Take(4).Select(c => $"{c.Component}: {c.RelativeChange:G4}")));
        Assert.Equal(TriggerOrganismFixture.Settings.ChangedComponent, diff.Components[0].Component);
        Assert.True(diff.Components[0].RelativeChange > 0.01);
        Assert.All(diff.Components.Skip(1), c => Assert.Equal(0, c.RelativeChange)); // the fine-tune froze everything else
        Assert.All(diff.Parameters.Where(p => p.Component != TriggerOrganismFixture.Settings.ChangedComponent), p => Assert.Equal(1.0, p.Cosine, 12));
    }

    [Fact]
    public void The_activation_difference_lens_names_the_planted_token_and_steering_with_it_plants_it_in_the_base()
    {
        var s = TriggerOrganismFixture.Settings;
        var (b, f) = (fixture.Organism.Base, fixture.Organism.Finetuned);
        using var stats = ActivationDifferenceLens.Compute(b, f, TriggerOrganismFixture.Hook, TriggerOrganismFixture.Contexts(21), positions: 8, maxSamples: 2048);
        var ranks = new List<int>();
        for (int j = 1; j < stats.Positions; j++)
        {
            var top = ActivationDifferenceLens.LogitLens(f, stats.MeanDifference[j], k: 10);
            int rank = top.Select(t => t.Token).ToList().IndexOf(s.Planted);
            ranks.Add(rank);
            output.WriteLine($"position {j}: ‖δ‖ {stats.MeanDifference[j].norm().item<float>():F3}, top-10 {string.Join(" ", top.Select(t => t.Token))}, planted at {rank}");
        }
        Assert.Contains(s.Planted, ActivationDifferenceLens.LogitLens(f, stats.MeanDifference[1], k: 10).Select(t => t.Token));
        Assert.All(ranks, r => Assert.InRange(r, 0, 9));

        using var scope = torch.NewDisposeScope();
        var tokens = TriggerOrganism.Sequences(s, 128, new Generator(5), planted: false);
        double Planted() { using var _ = torch.no_grad(); return b.Run(tokens).softmax(-1)[.., 1.., s.Planted].mean().item<float>(); }
        double before = Planted();
        double after;
        using (ActivationDifferenceLens.Steer(b, TriggerOrganismFixture.Hook, stats.MeanDifference[1], 1.0, stats.FinetunedNorm)) after = Planted();
        double restored = Planted();
        output.WriteLine($"mean P(planted) over the base's predictions: {before:F4} unsteered, {after:F4} steered (strength 1), {restored:F4} after removing the hook");
        Assert.True(after > 2 * before, $"steered {after} vs {before}");
        Assert.Equal(before, restored, 6);
    }
}
