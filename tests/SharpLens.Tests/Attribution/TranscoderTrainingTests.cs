using SharpLens.Attribution;
using SharpLens.Saes;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace SharpLens.Tests.Attribution;

public class TranscoderTrainingTests
{
    static string TempDir() { var d = Path.Combine(Path.GetTempPath(), "sharplens-tctrain-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(d); return d; }

    /// <summary>Data made by a known sparse CLT (a teacher): inputs [batch, n_layers, d_model] of varied scale per layer, targets its outputs.</summary>
    static (Tensor X, Tensor Y) TeacherBatch(TranscoderSet teacher, int batch, Generator g)
    {
        var scale = torch.tensor(new float[] { 1f, 3f, 0.5f }).view(1, -1, 1);
        var x = torch.randn(batch, teacher.NLayers, teacher.DModel, generator: g) * scale; // [batch, n_layers, d_model]
        var xt = x.transpose(0, 1);
        var acts = torch.stack(Enumerable.Range(0, teacher.NLayers).Select(l => teacher.Encode(l, xt[l]))); // [n_layers, batch, d_tc]
        return (x, teacher.Decode(acts, xt).transpose(0, 1).contiguous()); // [batch, n_layers, d_model]
    }

    static TranscoderSet Teacher(bool crossLayer)
    {
        var g = new Generator(5);
        int n = 3, d = 16, dTc = 24;
        // Sparse teacher: negative encoder biases, so a tenth to two fifths of its features fire, depending on the layer's input scale.
        var wEnc = 2 * torch.randn(n, dTc, d, generator: g) / Math.Sqrt(d);
        var bEnc = torch.full(n, dTc, -1.2f);
        var wDec = Enumerable.Range(0, n).Select(l => torch.randn(dTc, crossLayer ? n - l : 1, d, generator: g)).ToArray();
        return new TranscoderSet(crossLayer, wEnc, bEnc, torch.zeros(n, d), wDec, TranscoderActivation.Relu, null, 0, null, "hook_resid_mid", "hook_mlp_out", "teacher");
    }

    static double ExplainedVariance(Tensor y, Tensor yHat)
    {
        var yt = y.transpose(0, 1); var ht = yHat.transpose(0, 1); // [n_layers, batch, d]
        return 1 - ((yt - ht).pow(2).sum() / (yt - yt.mean([1], keepdim: true)).pow(2).sum()).item<float>();
    }

    [Theory]
    [InlineData(true, TranscoderActivation.Relu)]
    [InlineData(true, TranscoderActivation.JumpRelu)]
    [InlineData(false, TranscoderActivation.TopK)]
    [InlineData(false, TranscoderActivation.Relu)]
    public void A_trained_set_reconstructs_a_known_sparse_transcoders_outputs_and_saves_as_it_computes(bool crossLayer, TranscoderActivation act)
    {
        using var scope = torch.NewDisposeScope();
        using var teacher = Teacher(crossLayer);
        var options = new TranscoderTrainingOptions
        {
            CrossLayer = crossLayer, Activation = act, DTranscoder = 48, K = 12, Seed = 1,
            Training = new SaeTrainingSettings { Steps = 400, LearningRate = 1e-2, LrDecaySteps = 100, L1Coefficient = 1e-3, JumpReLUInitThreshold = 0.05, JumpReLUBandwidth = 0.1, ReportEvery = 400 },
        };
        using var trainer = new TranscoderTrainer(3, 16, options);
        var g = new Generator(9);
        SaeTrainingProgress? last = null;
        trainer.Train(_ => TeacherBatch(teacher, 256, g), new Progress(p => last = p));
        Assert.NotNull(last);

        var (x, y) = TeacherBatch(teacher, 2048, new Generator(77)); // held out
        var (acts, recon) = trainer.Reconstruct(x);
        double ev = ExplainedVariance(y, recon);
        // A constant prediction explains 0; the teacher itself explains 1.
        Assert.True(ev > 0.95, $"held-out explained variance {ev:0.000} (last batch: {last!.ExplainedVariance:0.000}, L0 {last.L0:0.0})");
        double l0 = acts.gt(0).sum().item<long>() / (2048.0 * 3);
        Assert.True(l0 < 24, $"L0 per token and layer {l0:0.0} of 48 features");
        if (act == TranscoderActivation.TopK) Assert.True(l0 <= 12, $"TopK L0 {l0}");

        // The set it hands out (scales folded in) computes exactly what the trainer does, and saves and loads back in
        // circuit-tracer's layout with the same numbers.
        using var set = trainer.ToSet("trained-test");
        var xt = x.transpose(0, 1);
        var setActs = torch.stack(Enumerable.Range(0, 3).Select(l => set.Encode(l, xt[l]))); // [n_layers, batch, d_tc]
        var setRecon = set.Decode(setActs, xt).transpose(0, 1);
        Assert.True((setRecon - recon).abs().max().item<float>() < 1e-3 * recon.abs().max().item<float>(), "folded set differs from the trainer");
        string dir = TempDir();
        try
        {
            TranscoderFiles.Save(set, dir);
            using var loaded = TranscoderFiles.Load(dir);
            Assert.Equal(crossLayer, loaded.CrossLayer);
            Assert.Equal(act, loaded.Activation);
            var loadedRecon = loaded.Decode(torch.stack(Enumerable.Range(0, 3).Select(l => loaded.Encode(l, xt[l]))), xt).transpose(0, 1);
            Assert.True((loadedRecon - setRecon).abs().max().item<float>() < 1e-5, "saved set differs");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Per_layer_transcoders_cannot_fit_what_features_of_earlier_layers_write_and_a_clt_can()
    {
        // The CLT teacher's later MLP outputs depend on earlier layers' inputs, which a per-layer transcoder never sees.
        using var scope = torch.NewDisposeScope();
        using var teacher = Teacher(crossLayer: true);
        double Fit(bool crossLayer)
        {
            var options = new TranscoderTrainingOptions
            {
                CrossLayer = crossLayer, DTranscoder = 48, Seed = 1,
                Training = new SaeTrainingSettings { Steps = 300, LearningRate = 1e-2, LrDecaySteps = 100, L1Coefficient = 1e-3, ReportEvery = 300 },
            };
            using var trainer = new TranscoderTrainer(3, 16, options);
            var g = new Generator(9);
            trainer.Train(_ => TeacherBatch(teacher, 256, g));
            var (x, y) = TeacherBatch(teacher, 2048, new Generator(77));
            return ExplainedVariance(y, trainer.Reconstruct(x).Recon);
        }
        double clt = Fit(true), plt = Fit(false);
        Assert.True(clt > 0.95 && plt < 0.8, $"explained variance: CLT {clt:0.000}, PLT {plt:0.000}");
    }

    [Fact]
    public void A_set_trained_on_a_model_fits_its_replacement_model_and_a_skip_path_is_learnt()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(TestModels.Tiny() with { NLayers = 2, DVocab = 40 }, seed: 4);
        var g = new Generator(3);
        IEnumerable<long[]> Contexts() { while (true) yield return [0, .. torch.randint(1, 40, 15, generator: g).data<long>().ToArray()]; }
        var options = new TranscoderTrainingOptions
        {
            Skip = true, DTranscoder = 64, Seed = 2, FeatureInputHook = "mlp.hook_in",
            Training = new SaeTrainingSettings { Steps = 60, LearningRate = 3e-3, L1Coefficient = 1e-3, ReportEvery = 10 },
        };
        var reports = new List<SaeTrainingProgress>();
        using var set = TranscoderTrainer.Train(model, Contexts(), options, new SharpLens.Saes.Data.ActivationStoreOptions { TrainBatchSize = 64, BufferRows = 256 },
            new Progress(reports.Add), excludedTokenIds: [0]);
        Assert.Equal("ln2.hook_normalized", set.FeatureInputHook);
        Assert.True(set.HasSkip && set.Skip!.abs().max().item<float>() > 0, "the skip path did not move from 0");
        Assert.Equal(6, reports.Count);
        Assert.True(reports[^1].Mse < 0.5 * reports[0].Mse, $"MSE went from {reports[0].Mse} to {reports[^1].Mse}");
        // The replacement model takes it, and reconstruction + error is the MLP output.
        var rm = new ReplacementModel(model, set);
        using var state = rm.Run(torch.tensor(new long[] { 0, 5, 9, 13, 2 }));
        Assert.True((state.Reconstructions + state.Errors - state.Outputs).narrow(1, 1, 4).abs().max().item<float>() < 1e-5);

        // Held-out evaluation: 4 contexts of 16 tokens give 4 × 15 predicted positions.
        var eval = TranscoderEvaluation.Evaluate(model, set, Contexts().Take(4), maxTokens: 1000, contextsPerCall: 2);
        Assert.Equal(60, eval.Tokens);
        Assert.All(eval.ExplainedVariance, ev => Assert.True(ev <= 1 && double.IsFinite(ev)));
        Assert.All(eval.L0, l0 => Assert.InRange(l0, 0, 64));
        Assert.True(double.IsFinite(eval.CleanLoss) && double.IsFinite(eval.ReplacedLoss) && eval.ZeroAblatedLoss != eval.CleanLoss, $"{eval}");
        // A CLT's closed loop reads every earlier layer's features.
        using var clt = TranscoderTrainer.Train(model, Contexts(), options with { CrossLayer = true, Skip = false, Training = options.Training with { Steps = 5 } },
            new SharpLens.Saes.Data.ActivationStoreOptions { TrainBatchSize = 64, BufferRows = 256 }, excludedTokenIds: [0]);
        var cltEval = TranscoderEvaluation.Evaluate(model, clt, Contexts().Take(4), maxTokens: 1000, contextsPerCall: 2);
        Assert.True(double.IsFinite(cltEval.ReplacedLoss) && cltEval.Tokens == 60, $"{cltEval}");
    }

    [Fact]
    public void A_run_on_a_model_resumed_from_a_checkpoint_replays_the_store_and_ends_bit_identical()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(TestModels.Tiny() with { NLayers = 2, DVocab = 40 }, seed: 4);
        IEnumerable<long[]> Contexts() // the same stream every time it is enumerated
        {
            var g = new Generator(3);
            while (true) yield return [0, .. torch.randint(1, 40, 15, generator: g).data<long>().ToArray()];
        }
        string root = TempDir();
        try
        {
            var store = new SharpLens.Saes.Data.ActivationStoreOptions { TrainBatchSize = 32, BufferRows = 128, Seed = 5 };
            TranscoderTrainingOptions Options(string checkpoints) => new()
            {
                CrossLayer = true, DTranscoder = 32, Seed = 2, KeepCheckpoints = 2,
                Training = new SaeTrainingSettings { Steps = 12, LearningRate = 3e-3, L1Coefficient = 1e-3, CheckpointEvery = 4, CheckpointFolder = checkpoints },
            };
            using var straight = TranscoderTrainer.Train(model, Contexts(), Options(Path.Combine(root, "straight")), store, excludedTokenIds: [0]);
            // Two kept: steps 8 and 12. Losing step 12 leaves step 8, 4 batches and 4 steps short of the end.
            string checkpoints = Path.Combine(root, "straight");
            Assert.Equal([8, 12], SharpLens.Training.CheckpointManifest.StepFolders(checkpoints).Select(c => c.Step));
            Directory.Delete(Path.Combine(checkpoints, "step-12"), recursive: true);
            var log = new List<string>();
            using var resumed = TranscoderTrainer.Train(model, Contexts(), Options(checkpoints), store, excludedTokenIds: [0], resume: true, log: log.Add);
            Assert.Equal(["Resumed from the checkpoint at step 8; replaying the 8 batches it had trained on."], log);
            foreach (var (a, b) in new[] { (straight.W_enc, resumed.W_enc), (straight.b_enc, resumed.b_enc), (straight.b_dec, resumed.b_dec) }.Concat(straight.W_dec.Zip(resumed.W_dec)))
                Assert.True(a.eq(b).all().item<bool>(), "the resumed set differs from the uninterrupted one");

            // A checkpoint of another kind of set is refused naming the field; none to resume starts from the beginning.
            var e = Assert.Throws<SharpLens.Loading.CheckpointException>(() =>
                TranscoderTrainer.Train(model, Contexts(), Options(checkpoints) with { DTranscoder = 16 }, store, excludedTokenIds: [0], resume: true));
            Assert.Contains("trainer.json", e.FilePath);
            Assert.Contains("'d_transcoder' is 32, but this run asks for 16", e.Message);
            log.Clear();
            using var fresh = TranscoderTrainer.Train(model, Contexts(), Options(Path.Combine(root, "none")) with { Training = Options("").Training with { Steps = 2, CheckpointFolder = Path.Combine(root, "none") } },
                store, excludedTokenIds: [0], resume: true, log: log.Add);
            Assert.StartsWith("No checkpoint to resume in", Assert.Single(log));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void Options_that_do_not_fit_are_refused_naming_the_option()
    {
        Assert.Contains("skip", Assert.Throws<AttributionArgumentException>(() => new TranscoderTrainingOptions { CrossLayer = true, Skip = true }.Validated()).Message);
        Assert.Contains("k", Assert.Throws<AttributionArgumentException>(() => new TranscoderTrainingOptions { Activation = TranscoderActivation.TopK, K = 0 }.Validated()).Argument);
        using var model = TestModels.RandomModel(TestModels.Tiny());
        var e = Assert.Throws<TranscoderMismatchException>(() => TranscoderTrainer.Train(model, [], new TranscoderTrainingOptions { FeatureInputHook = "hook_resid_mdi" }));
        Assert.Contains("hook_resid_mid", e.Message);
    }

    sealed class Progress(Action<SaeTrainingProgress> report) : IProgress<SaeTrainingProgress>
    {
        public void Report(SaeTrainingProgress value) => report(value);
    }
}
