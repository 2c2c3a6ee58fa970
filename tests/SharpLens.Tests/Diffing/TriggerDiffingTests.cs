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
        torch.set_num_threads(1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Organism = TriggerOrganism.TrainOrLoad(Settings, "/tmp/diffing-organism-cache");
        File.AppendAllText("/tmp/diffing-explore.log", $"organism {clock.Elapsed.TotalSeconds:F1}s\n");
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

    [Theory]
    [InlineData("batchtopk", 0)]
    [InlineData("l1", 0)]
    [InlineData("l1", 16)]
    public void Explore(string arch, int shared)
    {
        var config = new CrossCoderConfig(32, 256)
        {
            Architecture = arch == "l1" ? CrossCoderArchitecture.L1 : CrossCoderArchitecture.BatchTopK, K = 4,
        };
        var settings = new CrossCoderTrainingSettings { Steps = 600, SharedLatents = shared, L1Penalty = 0.1 };
        using var cc = fixture.TrainCrossCoder(config, settings, out var run);
        void Log(string line) { output.WriteLine(line); File.AppendAllText("/tmp/diffing-explore.log", line + "\n"); }
        Log($"{arch} shared {shared}: {run.Tokens} tokens {run.Seconds:F1}s  L0 {run.Last!.L0:F1} EV {string.Join("/", run.Last.ExplainedVariance.Select(v => v.ToString("F3")))} dead {run.Last.DeadLatents} thr {run.Last.Threshold:F3}");
        var norms = DecoderNorms.Of(cc);
        var (x, isTrigger) = fixture.HeldOut();
        using (x)
        using (torch.no_grad())
        {
            var f = cc.Encode(x); // [n, F]
            foreach (int latent in norms.MostFinetuneOnly(6))
            {
                var a = f[.., latent];
                double auroc = ProbeMetrics.Auroc(a.to(ScalarType.Float64).data<double>().ToArray(), isTrigger);
                Log($"  latent {latent}: rel {norms.Relative[latent]:F3} cos {norms.Cosine[latent]:F3} AUROC {auroc:F3} fires {a.gt(0).sum().item<long>()}");
            }
            Log($"  kinds: shared {norms.Count(LatentKind.Shared)} ft-only {norms.Count(LatentKind.FinetuneOnly)} base-only {norms.Count(LatentKind.BaseOnly)} other {norms.Count(LatentKind.Other)}");
            // best AUROC over all latents
            double best = 0; int bestLatent = -1;
            for (int i = 0; i < cc.DLatent; i++)
            {
                double au = ProbeMetrics.Auroc(f[.., i].to(ScalarType.Float64).data<double>().ToArray(), isTrigger);
                if (au > best) { best = au; bestLatent = i; }
            }
            Log($"  best AUROC latent {bestLatent}: {best:F3} rel {norms.Relative[bestLatent]:F3}");
        }
    }
}

