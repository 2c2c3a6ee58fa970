using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpLens.Attribution;
using SharpLens.Saes;
using SharpLens.Saes.Data;
using SharpLens.Training;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens transcoders train`: train per-layer (PLT) or cross-layer (CLT) transcoders on a model and save them in circuit-tracer's layout.</summary>
public static class TranscodersTrainCommand
{
    public static Command Create()
    {
        var args = new SaeArguments();
        var kind = new Option<string>("--kind") { Description = "plt (one transcoder per layer, circuit-tracer's transcoder_set) or clt (cross-layer: a feature writes to its own and every later MLP output).", DefaultValueFactory = _ => "plt" };
        var activation = new Option<string>("--activation") { Description = "relu, jumprelu or topk.", DefaultValueFactory = _ => "relu" };
        var skip = new Option<bool>("--skip") { Description = "PLT only: add a linear skip path x W_skip to each transcoder's output." };
        var expansion = new Option<int>("--expansion") { Description = "Features per layer = expansion × d_model (unless --d-transcoder is given).", DefaultValueFactory = _ => 8 };
        var dTc = new Option<int?>("--d-transcoder") { Description = "Features per layer." };
        var k = new Option<int>("--k") { Description = "TopK: features kept per token and layer.", DefaultValueFactory = _ => 16 };
        var l1 = new Option<double>("--l1") { Description = "λ of the sparsity penalty λ Σ a_i ‖W_dec,i‖ (relu, jumprelu), on activations scaled to norm √d_model per layer.", DefaultValueFactory = _ => 1.0 };
        var tanh = new Option<double>("--tanh-c") { Description = "Use Anthropic's penalty λ Σ tanh(c · a_i ‖W_dec,i‖) with this c (0: plain L1).", DefaultValueFactory = _ => 0 };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate (5% warm-up, linear decay over the last 20%).", DefaultValueFactory = _ => 1e-3 };
        var tokens = new Option<long>("--tokens") { Description = "Training tokens (BOS and padding do not count).", DefaultValueFactory = _ => 1_000_000 };
        var batch = new Option<int>("--batch-size") { Description = "Tokens per training step.", DefaultValueFactory = _ => 1024 };
        var evalTokens = new Option<long>("--eval-tokens") { Description = "Held-out tokens to evaluate on after training.", DefaultValueFactory = _ => 20_000 };
        var input = new Option<string>("--input-hook") { Description = "Where features read, under blocks.{l}. (TransformerLens names; mlp.hook_in = ln2.hook_normalized).", DefaultValueFactory = _ => "ln2.hook_normalized" };
        var output = new Option<string>("--output-hook") { Description = "Where features write, under blocks.{l}.: the MLP output.", DefaultValueFactory = _ => "hook_mlp_out" };
        var outFolder = new Option<string?>("--out") { Description = "The transcoder folder to write (default ./transcoders-<model>-<kind>)." };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Write a resumable checkpoint every this many steps (to OUT.checkpoints; 0: none).", DefaultValueFactory = _ => 250 };
        var keepCheckpoints = new Option<int>("--keep-checkpoints") { Description = "How many of the newest checkpoints to keep (0: all).", DefaultValueFactory = _ => 2 };
        var resume = new Option<bool>("--resume") { Description = "Continue from the latest checkpoint in OUT.checkpoints (exactly where it stopped; a damaged one is skipped for the one before)." };
        var command = new Command("train",
            "Train transcoders that replace a model's MLPs: the text is run through the model (weights unprocessed, as attribution " +
            "graphs use them), each layer's MLP input and output are shuffled in an activation store, and the set is trained on " +
            "Σ_layers MSE + λ · sparsity. Writes circuit-tracer's layout (config.yaml with layer_{i}.safetensors, or " +
            "W_enc_{i}/W_dec_{i}.safetensors for a CLT) and eval.json (explained variance, L0, next-token loss with the MLPs replaced).\n\n" +
            "Examples:\n  sharplens transcoders train --model brown-lm --corpus brown --kind clt --tokens 2000000 --out clt-brown\n" +
            "  sharplens transcoders train --model brown-lm --corpus brown --kind plt --activation jumprelu --skip --out plt-brown\n" +
            "  sharplens transcoders train --model brown-lm --corpus brown --kind clt --tokens 2000000 --out clt-brown --resume   (after an interruption)\n" +
            "  sharplens graph --model brown-lm --transcoders clt-brown --prompt \"The jury said\" --out graphs/jury");
        args.AddTo(command, processingOption: false);
        foreach (var option in new Option[] { kind, activation, skip, expansion, dTc, k, l1, tanh, lr, tokens, batch, evalTokens, input, output, outFolder, checkpointEvery, keepCheckpoints, resume }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            bool crossLayer = parse.GetValue(kind) switch
            {
                "plt" => false, "clt" => true,
                var other => throw new CliArgumentException($"--kind '{other}' is not known: use plt (per-layer transcoders) or clt (a cross-layer transcoder)."),
            };
            var act = parse.GetValue(activation) switch
            {
                "relu" => TranscoderActivation.Relu, "jumprelu" or "jump_relu" => TranscoderActivation.JumpRelu, "topk" => TranscoderActivation.TopK,
                var other => throw new CliArgumentException($"--activation '{other}' is not known: use relu, jumprelu or topk."),
            };
            if (parse.GetValue(tokens) < 1 || parse.GetValue(batch) < 1) throw new CliArgumentException("--tokens and --batch-size must be positive.");
            if (parse.GetValue(checkpointEvery) < 0) throw new CliArgumentException($"--checkpoint-every {parse.GetValue(checkpointEvery)} is negative: give a number of steps, or 0 for no checkpoints.");
            if (parse.GetValue(keepCheckpoints) < 0) throw new CliArgumentException($"--keep-checkpoints {parse.GetValue(keepCheckpoints)} is negative: give how many of the newest checkpoints to keep, or 0 to keep all.");
            if (parse.GetValue(skip) && crossLayer) throw new CliArgumentException("--skip is for --kind plt: circuit-tracer's cross-layer transcoder files have no skip connection.");
            using var subject = args.LoadSubject(parse, noProcessing: true);
            var model = subject.Decoder ?? throw new CliArgumentException($"--model {subject.Name} is an encoder; transcoders replace a decoder's MLPs for attribution graphs.");
            string folder = parse.GetValue(outFolder) ?? $"transcoders-{subject.Name}-{parse.GetValue(kind)}";
            string checkpoints = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar) + ".checkpoints";
            if (!parse.GetValue(resume) && CheckpointManifest.StepFolders(checkpoints) is { Count: > 0 } earlier)
                throw new CliArgumentException($"{checkpoints} holds the checkpoints of an earlier run (newest: step {earlier[^1].Step}); pass --resume to continue it, or delete that folder to start again.");
            int steps = (int)Math.Ceiling(parse.GetValue(tokens) / (double)parse.GetValue(batch));
            double lrValue = parse.GetValue(lr);
            var options = new TranscoderTrainingOptions
            {
                KeepCheckpoints = parse.GetValue(keepCheckpoints), CrossLayer = crossLayer, Activation = act, Skip = parse.GetValue(skip), K = parse.GetValue(k),
                DTranscoder = parse.GetValue(dTc) ?? parse.GetValue(expansion) * model.Config.DModel,
                FeatureInputHook = parse.GetValue(input)!, FeatureOutputHook = parse.GetValue(output)!, TanhScale = parse.GetValue(tanh),
                Seed = parse.GetValue(args.Seed),
                Training = new TranscoderTrainingOptions().Training with
                {
                    Steps = steps, LearningRate = lrValue, LrWarmupSteps = steps / 20, LrDecaySteps = steps / 5, L1Coefficient = parse.GetValue(l1),
                    SparsityWarmupSteps = steps / 20, DeadFeatureWindow = Math.Clamp(steps / 10, 10, 1000), ReportEvery = 1,
                    CheckpointEvery = parse.GetValue(checkpointEvery), CheckpointFolder = checkpoints,
                },
            };
            return Run(subject, model, args.Data(parse), args.ContextSizeFor(parse, subject), options, parse.GetValue(batch), parse.GetValue(evalTokens), folder, parse.GetValue(resume));
        }));
        return command;
    }

    static int Run(SaeSubject subject, Models.HookedTransformer model, SaeDataSource data, int contextSize, TranscoderTrainingOptions options,
        int batchSize, long evalTokens, string folder, bool resume)
    {
        var clock = Stopwatch.StartNew();
        long seed = options.Seed;
        var contexts = subject.Contexts(data, contextSize, heldOut: false, seed);
        var store = new ActivationStoreOptions { TrainBatchSize = batchSize, BufferRows = 16L * batchSize, Seed = seed };
        string what = $"{(options.CrossLayer ? "cross-layer transcoder" : "per-layer transcoders")} ({options.Activation}{(options.Skip ? ", skip" : "")})";
        Console.WriteLine($"Training {what} on {subject.Name}: {model.Config.NLayers} layers, d_model {model.Config.DModel}, {options.DTranscoder} features per layer, " +
                          $"{options.Training.Steps} steps of {batchSize} tokens, contexts of {contextSize}; blocks.*.{options.FeatureInputHook} → blocks.*.{options.FeatureOutputHook}.");
        SaeTrainingProgress? last = null;
        var trainClock = Stopwatch.StartNew();
        using var set = TrainingDisplay.Run(options.CrossLayer ? "CLT" : "PLT", options.Training.Steps, progress =>
            TranscoderTrainer.Train(model, contexts, options, store, new Callback(p =>
            {
                last = p;
                progress.Report(new TrainingProgress(p.Step, p.TotalSteps, p.Loss, p.LearningRate, trainClock.Elapsed));
            }), Math.Max(1, 4096 / contextSize), subject.ExcludedTokenIds(), resume, Console.WriteLine),
            _ => last is { } p ? $"L0 {p.L0,6:0.0}  MSE/layer {p.Mse,8:0.000}  expl. var. {p.ExplainedVariance,6:P1}  dead {p.DeadFeatures}" : "starting");
        trainClock.Stop();

        // The set is saved before it is evaluated, so a failing evaluation never costs the training.
        TranscoderFiles.Save(set, folder);
        var heldOut = subject.Contexts(data, contextSize, heldOut: true, seed);
        var eval = TranscoderEvaluation.Evaluate(model, set, heldOut, evalTokens, Math.Max(1, 2048 / contextSize));
        var c = CultureInfo.InvariantCulture;
        var json = new JsonObject
        {
            ["model"] = subject.Name, ["kind"] = options.CrossLayer ? "clt" : "plt", ["activation"] = options.Activation.ToString().ToLowerInvariant(),
            ["skip"] = options.Skip, ["d_transcoder"] = options.DTranscoder, ["k"] = options.Activation == TranscoderActivation.TopK ? options.K : null,
            ["feature_input_hook"] = set.FeatureInputHook, ["feature_output_hook"] = set.FeatureOutputHook,
            ["training"] = new JsonObject
            {
                ["steps"] = options.Training.Steps, ["batch_size"] = batchSize, ["learning_rate"] = options.Training.LearningRate,
                ["l1_coefficient"] = options.Activation == TranscoderActivation.TopK ? null : options.Training.L1Coefficient,
                ["tanh_c"] = options.TanhScale, ["context_size"] = contextSize, ["seed"] = seed, ["train_seconds"] = trainClock.Elapsed.TotalSeconds,
                ["dataset"] = subject.Organism is null ? data.Describe() : $"organism:{subject.Organism}",
            },
            ["eval"] = new JsonObject
            {
                ["tokens"] = eval.Tokens, ["explained_variance"] = new JsonArray([.. eval.ExplainedVariance.Select(v => (JsonNode)v)]),
                ["l0"] = new JsonArray([.. eval.L0.Select(v => (JsonNode)v)]), ["ce_loss_clean"] = eval.CleanLoss,
                ["ce_loss_replaced"] = eval.ReplacedLoss, ["ce_loss_mlps_zeroed"] = eval.ZeroAblatedLoss, ["ce_loss_recovered"] = eval.LossRecovered,
            },
        };
        IO.AtomicFile.WriteAllText(Path.Combine(folder, "eval.json"), json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
        Console.WriteLine($"Trained in {trainClock.Elapsed.TotalSeconds:0.0} s; total {clock.Elapsed.TotalSeconds:0.0} s.");
        Console.WriteLine($"Held out ({eval.Tokens:N0} tokens): explained variance per layer {string.Join(" ", eval.ExplainedVariance.Select(v => v.ToString("0.000", c)))}; " +
                          $"L0 per layer {string.Join(" ", eval.L0.Select(v => v.ToString("0.0", c)))}.");
        Console.WriteLine($"Next-token loss: clean {eval.CleanLoss.ToString("0.000", c)}, MLPs replaced {eval.ReplacedLoss.ToString("0.000", c)}, " +
                          $"MLPs zeroed {eval.ZeroAblatedLoss.ToString("0.000", c)} nats; loss recovered {eval.LossRecovered.ToString("P1", c)}.");
        if (options.Training.CheckpointEvery > 0) Console.WriteLine($"Checkpoints: {options.Training.CheckpointFolder}");
        Console.WriteLine($"Transcoders: {Path.GetFullPath(folder)}  (use with: sharplens graph --model {subject.Name} --transcoders {folder} --prompt TEXT --out DIR)");
        return 0;
    }

    sealed class Callback(Action<SaeTrainingProgress> report) : IProgress<SaeTrainingProgress>
    {
        public void Report(SaeTrainingProgress value) => report(value);
    }
}
