using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpLens.Saes;
using SharpLens.Saes.Data;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens sae train`: stream a model's activations at a hook through an activation store into an SAE; save and evaluate it.</summary>
public static class SaeTrainCommand
{
    public static Command Create()
    {
        var args = new SaeArguments();
        var hook = new Option<string>("--hook") { Description = "The hook to train on, e.g. blocks.3.hook_resid_post.", Required = true };
        var architecture = new Option<string>("--architecture") { Description = "standard, topk, batchtopk, jumprelu or gated.", DefaultValueFactory = _ => "topk" };
        var expansion = new Option<int>("--expansion") { Description = "d_sae = expansion × d_in (unless --d-sae is given).", DefaultValueFactory = _ => 16 };
        var dSae = new Option<int?>("--d-sae") { Description = "Number of features." };
        var k = new Option<int>("--k") { Description = "TopK / BatchTopK: features kept per token.", DefaultValueFactory = _ => 32 };
        var l1 = new Option<double>("--l1") { Description = "Sparsity coefficient: λ of the L1 penalty (standard, gated) or of the L0 penalty (jumprelu), on inputs scaled to norm √d_in.", DefaultValueFactory = _ => 5.0 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate (5% warm-up, linear decay over the last 20%).", DefaultValueFactory = _ => 1e-3 };
        var tokens = new Option<long>("--tokens") { Description = "Training tokens (activation rows; [CLS]/[SEP]/BOS/padding do not count).", DefaultValueFactory = _ => 1_000_000 };
        var batch = new Option<int>("--batch-size") { Description = "Tokens per training step.", DefaultValueFactory = _ => 4096 };
        var evalTokens = new Option<long>("--eval-tokens") { Description = "Held-out tokens to evaluate on after training.", DefaultValueFactory = _ => 100_000 };
        var outFolder = new Option<string?>("--out") { Description = "The SAELens folder to write (default ./sae-<model>-<hook>)." };
        var command = new Command("train",
            "Train a sparse autoencoder on a model's activations: the text is run through the model in contexts, the activations at " +
            "--hook are shuffled in a buffer (SAELens's activation store) and fed to the trainer. Writes an SAELens folder " +
            "(cfg.json, sae_weights.safetensors, sparsity.safetensors), eval.json and density.png.\n\n" +
            "Examples:\n  sharplens sae train --model all-MiniLM-L6-v2 --hook blocks.3.hook_resid_post --corpus brown --tokens 1000000 --out sae-minilm\n" +
            "  sharplens sae train --model latent --hook blocks.0.hook_resid_post --expansion 8 --k 4 --tokens 200000 --out sae-latent");
        args.AddTo(command);
        foreach (var option in new Option[] { hook, architecture, expansion, dSae, k, l1, lr, tokens, batch, evalTokens, outFolder }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var arch = parse.GetValue(architecture) switch
            {
                "standard" => SaeArchitecture.Standard, "topk" => SaeArchitecture.TopK, "batchtopk" => SaeArchitecture.BatchTopK,
                "jumprelu" => SaeArchitecture.JumpReLU, "gated" => SaeArchitecture.Gated,
                var other => throw new CliArgumentException($"--architecture '{other}' is not known: use standard, topk, batchtopk, jumprelu or gated."),
            };
            if (parse.GetValue(tokens) < 1 || parse.GetValue(batch) < 1) throw new CliArgumentException("--tokens and --batch-size must be positive.");
            using var subject = args.LoadSubject(parse);
            string hookName = parse.GetValue(hook)!;
            string folder = parse.GetValue(outFolder) ?? $"sae-{subject.Name}-{hookName}";
            var request = new Request(hookName, arch, parse.GetValue(expansion), parse.GetValue(dSae), parse.GetValue(k), parse.GetValue(l1),
                parse.GetValue(lr), parse.GetValue(tokens), parse.GetValue(batch), parse.GetValue(evalTokens), parse.GetValue(args.Seed), folder);
            return Run(subject, args.Data(parse), args.ContextSizeFor(parse, subject), request);
        }));
        return command;
    }

    sealed record Request(string Hook, SaeArchitecture Architecture, int Expansion, int? DSae, int K, double L1, double LearningRate,
        long Tokens, int BatchSize, long EvalTokens, long Seed, string OutFolder);

    static int Run(SaeSubject subject, SaeDataSource data, int contextSize, Request r)
    {
        var clock = Stopwatch.StartNew();
        var reader = subject.Reader(r.Hook);
        var contexts = subject.Contexts(data, contextSize, heldOut: false, r.Seed);
        var options = new ActivationStoreOptions { TrainBatchSize = r.BatchSize, BufferRows = 16L * r.BatchSize, Seed = r.Seed };
        using var store = ActivationStore.FromModel(reader, Saes.Data.Contexts.Batches(contexts, SaeEvaluationRun.ContextsPerCall(contextSize)), options,
            subject.ExcludedTokenIds());
        // The first batch tells the SAE its width; it is also the first training step's batch.
        ActivationChunk? first = store.NextBatch() ?? throw new CliArgumentException("The data gave no activations to train on.");
        int dIn = (int)first.Input.shape[1];
        int dSae = r.DSae ?? r.Expansion * dIn;
        int steps = (int)Math.Ceiling(r.Tokens / (double)r.BatchSize);
        var config = new SaeConfig(r.Architecture, dIn, dSae)
        {
            K = r.Architecture is SaeArchitecture.TopK or SaeArchitecture.BatchTopK ? r.K : 0,
            NormalizeActivations = ActivationNormalization.ExpectedAverageOnlyIn,
            Metadata = new SaeMetadata
            {
                ModelName = subject.Name, HookName = r.Hook, ContextSize = contextSize, PrependBos = subject.Encoder is null ? true : null,
                DatasetPath = subject.Organism is null ? data.Describe() : $"organism:{subject.Organism} (its training distribution)",
            },
        };
        using var sae = new Sae(config, r.Seed);
        var settings = new SaeTrainingSettings
        {
            Steps = steps, LearningRate = r.LearningRate, LrWarmupSteps = steps / 20, LrDecaySteps = steps / 5,
            L1Coefficient = r.L1, L0Coefficient = r.L1, SparsityWarmupSteps = steps / 20,
            DeadFeatureWindow = Math.Clamp(steps / 10, 10, 1000), InitBDecWithMean = true, ReportEvery = 1,
        };
        using var trainer = new SaeTrainer(sae, settings);
        Console.WriteLine($"Training a {r.Architecture} SAE on {subject.Name} {r.Hook}: d_in {dIn}, d_sae {dSae}, {steps} steps of {r.BatchSize} tokens, contexts of {contextSize}.");

        SaeTrainingProgress? last = null;
        var trainClock = Stopwatch.StartNew();
        TrainingDisplay.Run($"SAE {r.Hook}", steps, progress =>
        {
            trainer.Train(_ =>
            {
                var chunk = first ?? store.NextBatch() ?? throw new SharpLensInternalException("The activation store ran dry; the training stream should repeat.");
                first = null;
                using (chunk) return chunk.Input.clone(); // [batch, d_in], freed with the step's scope
            }, new Callback(p =>
            {
                last = p;
                progress.Report(new TrainingProgress(p.Step, p.TotalSteps, p.Loss, p.LearningRate, trainClock.Elapsed));
            }));
            return 0;
        }, _ => last is { } p ? $"L0 {p.L0,6:0.0}  MSE {p.Mse,8:0.000}  expl. var. {p.ExplainedVariance,6:P1}  dead {p.DeadFeatures}" : "starting");
        trainClock.Stop();

        var result = SaeEvaluationRun.Evaluate(subject, sae, r.Hook, data, contextSize, r.EvalTokens, r.Seed, r.OutFolder);
        using (var density = torch.tensor(result.Reconstruction.FeatureDensity))
        using (var logSparsity = (density + 1e-10).log10()) // SAELens's log_feature_sparsity
            SaeFiles.Save(sae, r.OutFolder, logSparsity);
        result.Json["training"] = new JsonObject
        {
            ["steps"] = steps, ["batch_size"] = r.BatchSize, ["tokens"] = store.RowsServed, ["learning_rate"] = r.LearningRate,
            ["l1_coefficient"] = r.Architecture is SaeArchitecture.Standard or SaeArchitecture.Gated or SaeArchitecture.JumpReLU ? r.L1 : null,
            ["k"] = config.K == 0 ? null : config.K, ["context_size"] = contextSize, ["seed"] = r.Seed,
            ["train_seconds"] = trainClock.Elapsed.TotalSeconds, ["tokens_per_second"] = store.RowsServed / trainClock.Elapsed.TotalSeconds,
            ["final_batch"] = last is { } f ? new JsonObject { ["l0"] = f.L0, ["mse"] = f.Mse, ["explained_variance"] = f.ExplainedVariance } : null,
            ["norm_scaling_factor_folded"] = trainer.NormScalingFactor,
        };
        result.Json["wall_seconds"] = clock.Elapsed.TotalSeconds;
        string evalPath = SaeEvaluationRun.Write(result.Json, r.OutFolder);
        Console.WriteLine($"Trained on {store.RowsServed:N0} tokens in {trainClock.Elapsed.TotalSeconds:0.0} s ({store.RowsServed / trainClock.Elapsed.TotalSeconds:N0} tokens/s); total {clock.Elapsed.TotalSeconds:0.0} s.");
        SaeEvaluationRun.Print(result.Json);
        Console.WriteLine($"SAE: {Path.GetFullPath(r.OutFolder)}  (eval: {evalPath})");
        return 0;
    }

    /// <summary>Reports synchronously on the training thread.</summary>
    sealed class Callback(Action<SaeTrainingProgress> report) : IProgress<SaeTrainingProgress>
    {
        public void Report(SaeTrainingProgress value) => report(value);
    }
}
