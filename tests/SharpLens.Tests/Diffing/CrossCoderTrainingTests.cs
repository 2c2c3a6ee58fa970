using SharpLens.Diffing;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Diffing;

/// <summary>
/// Paired activations with a known diff: d = 16, 24 shared features (one direction, present in both models), 4 only in
/// the fine-tune (model 1) and 4 only in the base; each token has 2 – 3 active features.
/// </summary>
sealed class KnownDiff : IDisposable
{
    public const int D = 16, Shared = 24, Exclusive = 4;
    public readonly Tensor Directions; // [Shared + 2·Exclusive, D]

    public KnownDiff()
    {
        var g = new Generator(7);
        var dirs = torch.randn(Shared + 2 * Exclusive, D, generator: g);
        Directions = (dirs / dirs.norm(1, keepdim: true)).DetachFromDisposeScope();
    }

    /// <summary>Batch [n, 2, D] and which features were on [n, features].</summary>
    public (Tensor X, Tensor On) Batch(int n, long seed)
    {
        using var scope = torch.NewDisposeScope();
        var g = new Generator((ulong)seed);
        int features = Shared + 2 * Exclusive;
        var on = torch.rand(n, features, generator: g).lt(2.5 / features).to(ScalarType.Float32); // [n, features]
        var acts = on * (0.5 + torch.rand(n, features, generator: g)); // [n, features]
        var baseMask = torch.ones(features); baseMask.narrow(0, Shared, Exclusive).zero_(); // fine-tune-only features absent in base
        var ftMask = torch.ones(features); ftMask.narrow(0, Shared + Exclusive, Exclusive).zero_(); // base-only absent in fine-tune
        var xb = (acts * baseMask).matmul(Directions); // [n, D]
        var xf = (acts * ftMask).matmul(Directions); // [n, D]
        return (torch.stack([xb, xf], 1).MoveToOuterDisposeScope(), on.MoveToOuterDisposeScope()); // [n, 2, D]
    }

    public void Dispose() => Directions.Dispose();
}

public class CrossCoderTrainingTests
{
    [Fact]
    public void A_batchtopk_crosscoder_estimates_its_threshold_and_keeps_about_k_latents_at_inference()
    {
        using var known = new KnownDiff();
        using var cc = new CrossCoder(new CrossCoderConfig(KnownDiff.D, 64) { K = 3 }, seed: 1);
        using var trainer = new CrossCoderTrainer(cc, new CrossCoderTrainingSettings { Steps = 300, LearningRate = 1e-2 });
        CrossCoderTrainingProgress? last = null;
        trainer.Train(step => known.Batch(512, step).X, new Reporter(p => last = p));
        Assert.Equal(3, cc.K); // annealed from k_max = 30 down to k
        Assert.True(cc.Threshold.item<float>() > 0, "the inference threshold was estimated");
        using var _ = torch.no_grad();
        double l0 = cc.Encode(known.Batch(2048, 999).X).gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>();
        Console.WriteLine($"BatchTopK: threshold {cc.Threshold.item<float>()}, inference L0 {l0}, training explained variance {string.Join("/", last!.ExplainedVariance)}");
        Assert.InRange(l0, 1.5, 4.5); // the threshold keeps about k = 3 per token without looking at the batch
        Assert.All(last.ExplainedVariance, ev => Assert.True(ev > 0.7, $"explained variance {ev}"));
    }

    sealed class Reporter(Action<CrossCoderTrainingProgress> report) : IProgress<CrossCoderTrainingProgress>
    {
        public void Report(CrossCoderTrainingProgress value) => report(value);
    }

    [Theory]
    [InlineData(CrossCoderArchitecture.L1)]
    public void A_crosscoder_finds_the_features_only_the_fine_tune_has_at_relative_norm_near_one(CrossCoderArchitecture architecture)
    {
        using var known = new KnownDiff();
        using var cc = new CrossCoder(new CrossCoderConfig(KnownDiff.D, 64) { Architecture = architecture, K = 3 }, seed: 1);
        using var trainer = new CrossCoderTrainer(cc, new CrossCoderTrainingSettings { Steps = 400, LearningRate = 1e-2, L1Penalty = 0.05 });
        trainer.Train(step => known.Batch(512, step).X);
        var norms = DecoderNorms.Of(cc);
        // For each planted feature, the latent whose fine-tune (or base) decoder points along it.
        using var scope = torch.NewDisposeScope();
        var ftDec = cc.W_dec[1].detach() / cc.W_dec[1].detach().norm(1, keepdim: true).clamp_min(1e-9); // [F, D]
        var baseDec = cc.W_dec[0].detach() / cc.W_dec[0].detach().norm(1, keepdim: true).clamp_min(1e-9);
        var found = Enumerable.Range(0, KnownDiff.Exclusive).Select(i => norms.Relative[(int)ftDec.matmul(known.Directions[KnownDiff.Shared + i]).argmax().item<long>()]).ToArray();
        var foundBase = Enumerable.Range(0, KnownDiff.Exclusive).Select(i => norms.Relative[(int)baseDec.matmul(known.Directions[KnownDiff.Shared + KnownDiff.Exclusive + i]).argmax().item<long>()]).ToArray();
        Console.WriteLine($"{architecture}: fine-tune-only features at {string.Join(", ", found)}; base-only at {string.Join(", ", foundBase)}");
        for (int i = 0; i < KnownDiff.Exclusive; i++)
        {
            int ftLatent = (int)ftDec.matmul(known.Directions[KnownDiff.Shared + i]).argmax().item<long>();
            Assert.True(norms.Relative[ftLatent] > 0.9, $"fine-tune-only feature {i}: latent {ftLatent} has relative norm {norms.Relative[ftLatent]}");
            int baseLatent = (int)baseDec.matmul(known.Directions[KnownDiff.Shared + KnownDiff.Exclusive + i]).argmax().item<long>();
            Assert.True(norms.Relative[baseLatent] < 0.1, $"base-only feature {i}: latent {baseLatent} has relative norm {norms.Relative[baseLatent]}");
        }
        int sharedLatent = (int)ftDec.matmul(known.Directions[0]).argmax().item<long>();
        Assert.InRange(norms.Relative[sharedLatent], 0.35f, 0.65f);
        Assert.True(norms.Cosine[sharedLatent] > 0.9, $"shared decoder cosine {norms.Cosine[sharedLatent]}");
        if (architecture == CrossCoderArchitecture.BatchTopK)
        {
            Assert.True(cc.Threshold.item<float>() > 0, "the inference threshold was estimated");
            using var _ = torch.no_grad();
            double l0 = cc.Encode(known.Batch(2048, 999).X).gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>();
            Assert.InRange(l0, 1.5, 4.5); // inference with the threshold keeps about k = 3 per token
        }
    }

    [Fact]
    public void Resuming_from_a_checkpoint_gives_the_weights_of_an_uninterrupted_run()
    {
        using var known = new KnownDiff();
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-cc-resume-{Guid.NewGuid():N}");
        try
        {
            var settings = new CrossCoderTrainingSettings { Steps = 60, CheckpointEvery = 30, CheckpointFolder = folder };
            var config = new CrossCoderConfig(KnownDiff.D, 32) { K = 2 };
            using var straight = new CrossCoder(config, seed: 3);
            using (var t = new CrossCoderTrainer(straight, settings)) t.Train(step => known.Batch(128, step).X);
            using (var first = new CrossCoder(config, seed: 3))
            using (var t = new CrossCoderTrainer(first, settings)) t.Train(step => known.Batch(128, step).X, stopAtStep: 30);
            using var resumed = CrossCoderTrainer.Resume(Path.Combine(folder, "step-30"), settings);
            Assert.Equal(30, resumed.Step);
            resumed.Train(step => known.Batch(128, step).X);
            foreach (var ((name, a), (_, b)) in straight.StateDict().Zip(resumed.CrossCoder.StateDict()))
                Assert.True(a.bytes.SequenceEqual(b.bytes), $"{name} differs after resuming");
            resumed.CrossCoder.Dispose();
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
    }

    [Fact]
    public void Schedules_scale_with_the_run_and_k_anneals_to_its_target()
    {
        var cfg = new CrossCoderConfig(16, 256) { K = 8 };
        var shortRun = new CrossCoderTrainingSettings { Steps = 200 };
        Assert.Equal(10, shortRun.Warmup);
        Assert.Equal(20, shortRun.KAnnealing);
        Assert.Equal(10, shortRun.ThresholdStart);
        Assert.Equal(80, shortRun.KMaxFor(cfg));
        var longRun = new CrossCoderTrainingSettings { Steps = 100_000 };
        Assert.Equal(1000, longRun.Warmup); // dictionary_learning's constants once the run is long enough
        Assert.Equal(2000, longRun.KAnnealing);
        Assert.Equal(1000, longRun.ThresholdStart);
        Assert.Equal(0.999, longRun.Beta);
        using var cc = new CrossCoder(cfg);
        using var trainer = new CrossCoderTrainer(cc, shortRun);
        Assert.Equal(80, trainer.KAt(0));
        Assert.Equal(44, trainer.KAt(10));
        Assert.Equal(8, trainer.KAt(20));
        Assert.Equal(8, trainer.KAt(150));
    }

    [Fact]
    public void Designated_shared_latents_keep_one_decoder_for_both_models()
    {
        using var known = new KnownDiff();
        using var cc = new CrossCoder(new CrossCoderConfig(KnownDiff.D, 48) { Architecture = CrossCoderArchitecture.L1 }, seed: 2);
        using var trainer = new CrossCoderTrainer(cc, new CrossCoderTrainingSettings { Steps = 50, SharedLatents = 8, LearningRate = 1e-2 });
        trainer.Train(step => known.Batch(256, step).X);
        using var scope = torch.NewDisposeScope();
        var shared = cc.W_dec.detach().narrow(1, 0, 8); // [2, 8, D]
        Assert.True((shared[0] - shared[1]).abs().max().item<float>() < 1e-6, "shared latents' decoders are tied");
        var norms = DecoderNorms.Of(cc);
        Assert.All(Enumerable.Range(0, 8), i => Assert.InRange(norms.Relative[i], 0.4999f, 0.5001f));
    }

    [Fact]
    public void Latent_scaling_equals_a_brute_force_least_squares_fit()
    {
        using var known = new KnownDiff();
        using var cc = new CrossCoder(new CrossCoderConfig(KnownDiff.D, 32) { Architecture = CrossCoderArchitecture.L1 }, seed: 4);
        using (var t = new CrossCoderTrainer(cc, new CrossCoderTrainingSettings { Steps = 40, LearningRate = 1e-2 })) t.Train(step => known.Batch(256, step).X);
        using var scope = torch.NewDisposeScope();
        var (x, _) = known.Batch(300, 77);
        int[] latents = [0, 5, 9];
        using var scaling = new LatentScaling(cc, latents);
        scaling.Add(x.narrow(0, 0, 100));
        scaling.Add(x.narrow(0, 100, 200));
        var results = scaling.Results();
        using var _ = torch.no_grad();
        var xn = cc.Normalize(x).to(ScalarType.Float64);
        var f = cc.Sparsify(cc.EncodeReLU(cc.Normalize(x))).to(ScalarType.Float64);
        var xHat = cc.DecodeNormalized(f.to(ScalarType.Float32)).to(ScalarType.Float64);
        foreach (var (latent, r) in latents.Zip(results))
        {
            var fj = f[.., latent]; // [n]
            var dFt = cc.W_dec[1, latent].to(ScalarType.Float64); // [D]
            var dBase = cc.W_dec[0, latent].to(ScalarType.Float64);
            // argmin_β Σ_n ‖Y_n − β f_n d‖², by least squares over the flattened problem.
            double Fit(Tensor y) { var a = (fj.unsqueeze(1) * dFt).reshape(-1, 1); return torch.linalg.lstsq(a, y.reshape(-1, 1)).Solution.item<double>(); }
            double baseErr = Fit(xn[.., 0] - (xHat[.., 0] - fj.unsqueeze(1) * dBase));
            double ftRecon = Fit(xHat[.., 1]);
            if (fj.gt(0).sum().item<long>() == 0) continue;
            Assert.Equal(baseErr, r.BetaBaseError, 6);
            Assert.Equal(ftRecon, r.BetaFinetunedReconstruction, 6);
            Assert.Equal(r.BetaBaseError / r.BetaFinetunedError, r.RatioError, 9);
        }
    }
}
