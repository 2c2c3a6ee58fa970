using System.Globalization;
using System.Security.Cryptography;
using SharpLens.Attribution;
using SharpLens.Diffing;
using SharpLens.Grokking;
using SharpLens.Saes;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Fuzz;

/// <summary>
/// The training run the kill-and-resume tests SIGKILL: <c>SharpLens.Fuzz.dll train sae|crosscoder|transcoder|grokking --folder DIR
/// [--resume] [--delay-ms N]</c>. Each is a tiny, deterministic run with a checkpoint every 5 of its 40 steps, on one
/// thread; with --resume it continues from the newest checkpoint in DIR that passes its manifest (printing each one it
/// refuses). It ends by printing <c>WEIGHTS &lt;sha256&gt;</c> of every parameter's bytes, in order, so two runs can be
/// compared bit for bit. --delay-ms slows each step (sleeping, so the numbers do not change) to leave time for the kill.
/// </summary>
public static class TrainingRig
{
    public const int Steps = 40, Every = 5;

    public static int Run(string[] args, TextWriter output)
    {
        string trainer = args[0];
        string folder = Value(args, "--folder") ?? throw new ArgumentException("--folder DIR is required");
        bool resume = args.Contains("--resume");
        int delay = int.Parse(Value(args, "--delay-ms") ?? "0", CultureInfo.InvariantCulture);
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            void Log(string message) { output.WriteLine(message); output.Flush(); }
            string weights = trainer switch
            {
                "sae" => Sae(folder, resume, delay, Log),
                "crosscoder" => CrossCoder(folder, resume, delay, Log),
                "transcoder" => Transcoder(folder, resume, delay, Log),
                "grokking" => Grokking(folder, delay, Log),
                _ => throw new ArgumentException($"unknown trainer '{trainer}': sae, crosscoder, transcoder or grokking"),
            };
            Log($"WEIGHTS {weights}");
            return 0;
        }
        finally { torch.set_num_threads(threads); }
    }

    static string? Value(string[] args, string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;

    /// <summary>Step <paramref name="step"/>'s batch: the same rows in every process, whatever ran before.</summary>
    static Tensor Rows(int step, long rows, long width, int delay)
    {
        if (delay > 0) Thread.Sleep(delay);
        using var generator = new Generator((ulong)(1000 + step));
        return torch.randn([rows, width], generator: generator).relu_(); // [rows, width], sparse-ish and non-negative
    }

    static string Sae(string folder, bool resume, int delay, Action<string> log)
    {
        var settings = new SaeTrainingSettings
        {
            Steps = Steps, LearningRate = 3e-3, LrWarmupSteps = 4, LrDecaySteps = 8, DeadFeatureWindow = 5,
            CheckpointEvery = Every, CheckpointFolder = Path.Combine(folder, "checkpoints"), ReportEvery = Steps,
        };
        var trainer = resume ? SaeTrainer.ResumeLatest(settings.CheckpointFolder, settings, log) : null;
        if (trainer is not null) log($"Resumed from the checkpoint at step {trainer.Step}.");
        trainer ??= new SaeTrainer(new Saes.Sae(new SaeConfig(SaeArchitecture.TopK, 16, 64) { K = 4 }, seed: 2), settings);
        using (trainer)
        {
            trainer.Train(step => Rows(step, 64, 16, delay));
            using var sae = trainer.Sae;
            return Hash(sae.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
        }
    }

    static string CrossCoder(string folder, bool resume, int delay, Action<string> log)
    {
        var settings = new CrossCoderTrainingSettings { Steps = Steps, CheckpointEvery = Every, CheckpointFolder = Path.Combine(folder, "checkpoints") };
        var trainer = resume ? CrossCoderTrainer.ResumeLatest(settings.CheckpointFolder, settings, log) : null;
        if (trainer is not null) log($"Resumed from the checkpoint at step {trainer.Step}.");
        trainer ??= new CrossCoderTrainer(new Diffing.CrossCoder(new CrossCoderConfig(8, 32) { K = 2 }, seed: 3), settings);
        using (trainer)
        {
            trainer.Train(step => Rows(step, 128, 2 * 8, delay).view(128, 2, 8)); // [batch, models, d]
            using var crosscoder = trainer.CrossCoder;
            return Hash(crosscoder.StateDict().Select(kv => (kv.Key, kv.Value)));
        }
    }

    /// <summary>A cross-layer JumpReLU transcoder over 3 layers of width 8 (JumpReLU: its thresholds are trainer state too).</summary>
    static string Transcoder(string folder, bool resume, int delay, Action<string> log)
    {
        const int layers = 3, width = 8;
        var options = new TranscoderTrainingOptions
        {
            CrossLayer = true, Activation = TranscoderActivation.JumpRelu, DTranscoder = 24, Seed = 4, KeepCheckpoints = 0,
            Training = new TranscoderTrainingOptions().Training with
            {
                Steps = Steps, LearningRate = 3e-3, LrWarmupSteps = 4, LrDecaySteps = 8, SparsityWarmupSteps = 4, DeadFeatureWindow = 5,
                CheckpointEvery = Every, CheckpointFolder = Path.Combine(folder, "checkpoints"), ReportEvery = Steps,
            },
        };
        var trainer = resume ? TranscoderTrainer.ResumeLatest(options.Training.CheckpointFolder, layers, width, options, log) : null;
        if (trainer is not null) log($"Resumed from the checkpoint at step {trainer.Step}.");
        trainer ??= new TranscoderTrainer(layers, width, options);
        using (trainer)
        {
            trainer.Train(step =>
            {
                var rows = Rows(step, 64, 2 * layers * width, delay).view(64, 2, layers, width); // [batch, input/target, n_layers, d_model]
                return (rows.select(1, 0), rows.select(1, 1));
            });
            using var set = trainer.ToSet();
            var parameters = new List<(string, Tensor)> { ("W_enc", set.W_enc), ("b_enc", set.b_enc), ("b_dec", set.b_dec), ("threshold", set.Threshold!) };
            parameters.AddRange(set.W_dec.Select((w, l) => ($"W_dec_{l}", w)));
            return Hash(parameters);
        }
    }

    /// <summary>The grokking trainer (Trainer with TrainingCheckpoint folders) on p = 13; it resumes by itself when the folder has a run.</summary>
    static string Grokking(string folder, int delay, Action<string> log)
    {
        var settings = new ModularAdditionSettings
        {
            P = 13, TrainFraction = 0.5, DModel = 16, NHeads = 2, DHead = 8, DMlp = 32, Steps = Steps, CheckpointEvery = Every, EvaluateEvery = 10,
        };
        using var data = new ModularAddition(settings);
        var progress = new Progress(_ => { if (delay > 0) Thread.Sleep(delay); });
        var (model, record) = GrokkingTraining.TrainOrResume(settings, data, folder, progress);
        using (model)
        {
            foreach (string refused in record.CheckpointsRefused) log(refused);
            if (record.ResumedFrom is int from) log($"Resumed from the checkpoint at step {from}.");
            return Hash(model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)));
        }
    }

    sealed class Progress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value); // synchronously, on the training thread
    }

    static string Hash(IEnumerable<(string Name, Tensor Value)> parameters)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, value) in parameters)
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            using var cpu = value.detach().contiguous();
            sha.AppendData(cpu.bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
