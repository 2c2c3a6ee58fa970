using System.CommandLine;
using System.Diagnostics;
using SharpLens.Organisms;
using SharpLens.Training;
using SharpLens.Training.LanguageModels;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens train` and `sharplens finetune`: thin shells over <see cref="LanguageModelTrainer"/>.</summary>
static class TrainCommand
{
    static readonly LanguageModelSettings Defaults = new();

    /// <summary>The optimisation flags both commands share.</summary>
    sealed class Common
    {
        public readonly Option<string> Corpus = new("--corpus") { Description = "brown, brown:GENRE[,GENRE] (e.g. brown:news), a .jsonl file (one {\"text\": ...} per line), a text file (documents separated by blank lines) or a folder of .txt files." };
        public readonly Option<int> Context = new("--context") { Description = "Tokens per training window (the model's n_ctx when training from scratch).", DefaultValueFactory = _ => Defaults.Context };
        public readonly Option<int> Steps = new("--steps") { Description = "Optimiser steps.", DefaultValueFactory = _ => Defaults.Steps };
        public readonly Option<int> BatchSize = new("--batch-size") { Description = "Windows per micro-batch.", DefaultValueFactory = _ => Defaults.BatchSize };
        public readonly Option<int> GradAccum = new("--grad-accum") { Description = "Micro-batches whose gradients make one step (gradient accumulation).", DefaultValueFactory = _ => 1 };
        public readonly Option<double> Lr = new("--lr") { Description = "Peak learning rate (AdamW), after linear warm-up; cosine decay to --min-lr-fraction of it.", DefaultValueFactory = _ => Defaults.LearningRate };
        public readonly Option<double> MinLr = new("--min-lr-fraction") { Description = "Final learning rate as a fraction of the peak.", DefaultValueFactory = _ => Defaults.MinLearningRateFraction };
        public readonly Option<int> Warmup = new("--warmup") { Description = "Linear warm-up steps.", DefaultValueFactory = _ => Defaults.WarmupSteps };
        public readonly Option<double> WeightDecay = new("--weight-decay") { Description = "AdamW weight decay.", DefaultValueFactory = _ => Defaults.WeightDecay };
        public readonly Option<double> Clip = new("--grad-clip") { Description = "Clip the global gradient norm to this.", DefaultValueFactory = _ => Defaults.MaxGradNorm };
        public readonly Option<long> Seed = new("--seed") { Description = "Seed of the initial weights and of the batches; one thread and one seed give the same model.", DefaultValueFactory = _ => Defaults.Seed };
        public readonly Option<int> EvalEvery = new("--eval-every") { Description = "Measure the validation loss every this many steps.", DefaultValueFactory = _ => Defaults.EvaluateEvery };
        public readonly Option<int> EvalWindows = new("--eval-windows") { Description = "Validation windows per periodic measurement (the final one uses the whole split).", DefaultValueFactory = _ => Defaults.EvaluationWindows };
        public readonly Option<int> CheckpointEvery = new("--checkpoint-every") { Description = "Write a resumable checkpoint every this many steps (to OUT.checkpoints).", DefaultValueFactory = _ => Defaults.CheckpointEvery ?? 250 };
        public readonly Option<double> Repeat = new("--repeat-fraction") { Description = "Share of each step's windows made of a passage and the same passage again (teaches in-context copying, induction heads, on a small budget); 0 trains on the text as it is.", DefaultValueFactory = _ => Defaults.RepeatFraction };
        public readonly Option<double> Validation = new("--validation-fraction") { Description = "Share of documents held out for validation (chosen by a hash of each document's id).", DefaultValueFactory = _ => Defaults.ValidationFraction };
        public readonly Option<int> Threads = new("--threads") { Description = "Torch CPU threads (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount };
        public readonly Option<string> Out = new("--out") { Description = "Folder the model is saved to (Hugging Face layout); written to a temporary folder and renamed when complete.", Required = true };
        public readonly Option<bool> Resume = new("--resume") { Description = "Continue from the latest checkpoint in OUT.checkpoints (exactly where it stopped)." };
        public readonly Option<bool> Overwrite = new("--overwrite") { Description = "Replace an existing --out folder once the new model is saved." };
        public readonly Option<string?> Cache = new("--cache") { Description = "Cache root for the corpus, tokenizers and token shards (default: $SHARPLENS_CACHE, else ~/.cache/sharplens)." };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Corpus, Context, Steps, BatchSize, GradAccum, Lr, MinLr, Warmup, WeightDecay, Clip, Seed, EvalEvery, EvalWindows, CheckpointEvery, Validation, Repeat, Threads, Out, Resume, Overwrite, Cache })
                command.Options.Add(option);
        }

        public LanguageModelSettings Apply(ParseResult parse, LanguageModelSettings settings) => settings with
        {
            Corpus = parse.GetValue(Corpus) ?? settings.Corpus,
            Context = parse.GetValue(Context), Steps = parse.GetValue(Steps), BatchSize = parse.GetValue(BatchSize), GradientAccumulation = parse.GetValue(GradAccum),
            LearningRate = parse.GetValue(Lr), MinLearningRateFraction = parse.GetValue(MinLr), WarmupSteps = parse.GetValue(Warmup), WeightDecay = parse.GetValue(WeightDecay),
            MaxGradNorm = parse.GetValue(Clip), Seed = parse.GetValue(Seed), EvaluateEvery = parse.GetValue(EvalEvery), EvaluationWindows = parse.GetValue(EvalWindows),
            CheckpointEvery = parse.GetValue(CheckpointEvery), ValidationFraction = parse.GetValue(Validation), RepeatFraction = parse.GetValue(Repeat),
        };

        public LanguageModelRunOptions Run(ParseResult parse) => new()
        {
            CacheRoot = parse.GetValue(Cache), Resume = parse.GetValue(Resume), Overwrite = parse.GetValue(Overwrite), Log = new Callback<string>(Console.WriteLine),
        };
    }

    public static Command Create()
    {
        var common = new Common();
        var arch = new Option<string>("--arch") { Description = "gpt2 (LayerNorm, learned positions, GELU) or llama (RMSNorm, rotary, SwiGLU).", DefaultValueFactory = _ => "gpt2" };
        arch.AcceptOnlyFromAmong("gpt2", "llama");
        var layers = new Option<int>("--layers") { Description = "Transformer blocks.", DefaultValueFactory = _ => Defaults.Layers };
        var dModel = new Option<int>("--d-model") { Description = "Residual stream width.", DefaultValueFactory = _ => Defaults.DModel };
        var heads = new Option<int>("--heads") { Description = "Attention heads per layer (d_head = d_model / heads).", DefaultValueFactory = _ => Defaults.Heads };
        var vocab = new Option<string>("--vocab-size") { Description = "Ids of the byte-level BPE trained on the corpus (at least 256 + special tokens), or gpt2 for GPT-2's own tokenizer.", DefaultValueFactory = _ => $"{Defaults.VocabSize}" };

        var command = new Command("train", "Train a GPT-2 or Llama language model from scratch on a text corpus and save it as a Hugging Face folder (config.json, model.safetensors, tokenizer.json).");
        command.Options.Add(arch); command.Options.Add(layers); command.Options.Add(dModel); command.Options.Add(heads); command.Options.Add(vocab);
        common.AddTo(command);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            string vocabText = parse.GetValue(vocab)!;
            int? vocabSize = vocabText == "gpt2" ? null
                : int.TryParse(vocabText, out int v) ? v : throw new LanguageModelSettingsException($"--vocab-size '{vocabText}' is neither a number nor gpt2.");
            var settings = common.Apply(parse, Defaults) with
            {
                Corpus = parse.GetValue(common.Corpus) ?? throw new LanguageModelSettingsException("--corpus is required: brown, brown:GENRE, a .jsonl file, a text file or a folder of .txt files."),
                Architecture = parse.GetValue(arch) == "llama" ? LanguageModelArchitecture.Llama : LanguageModelArchitecture.Gpt2,
                Layers = parse.GetValue(layers), DModel = parse.GetValue(dModel), Heads = parse.GetValue(heads), VocabSize = vocabSize,
            };
            UncaughtNativeCalls.SetNumThreads(Math.Max(1, parse.GetValue(common.Threads)));
            string output = parse.GetValue(common.Out)!;
            var result = WithProgress("Training", settings, progress => LanguageModelTrainer.Train(settings, output, common.Run(parse), progress));
            return Report(result);
        }));
        return command;
    }

    public static Command CreateFinetune()
    {
        var common = new Common();
        var model = new Option<string>("--model") { Description = $"The base: a folder `sharplens train` wrote (or a Hugging Face GPT-2 / Llama folder with tokenizer.json), or {string.Join(" / ", BrownLanguageModel.Names)}. It is only read.", Required = true };
        var genre = new Option<string?>("--genre") { Description = "Shorthand for --corpus brown:GENRE (e.g. news, fiction, learned)." };
        var command = new Command("finetune", "Continue training a saved language model on other text (e.g. one Brown genre), keeping its config and tokenizer; the base folder is left unchanged.");
        command.Options.Add(model); command.Options.Add(genre);
        common.AddTo(command);
        common.Steps.DefaultValueFactory = _ => 300;
        common.Lr.DefaultValueFactory = _ => 3e-4;
        common.Warmup.DefaultValueFactory = _ => 20;
        common.EvalEvery.DefaultValueFactory = _ => 50;
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            string corpus = parse.GetValue(genre) is { } g ? $"brown:{g}"
                : parse.GetValue(common.Corpus) ?? throw new LanguageModelSettingsException("finetune needs --corpus (brown:GENRE, a .jsonl or text file) or --genre GENRE.");
            UncaughtNativeCalls.SetNumThreads(Math.Max(1, parse.GetValue(common.Threads)));
            var run = common.Run(parse);
            string baseFolder = parse.GetValue(model)!;
            if (BrownLanguageModel.IsName(baseFolder)) baseFolder = EnsureBrownLanguageModel(baseFolder, run.CacheRoot, run.Log);
            var settings = common.Apply(parse, Defaults) with { Corpus = corpus };
            string output = parse.GetValue(common.Out)!;
            var result = WithProgress("Fine-tuning", settings, progress => LanguageModelTrainer.Finetune(baseFolder, settings, output, run, progress));
            return Report(result);
        }));
        return command;
    }

    static LanguageModelResult WithProgress(string title, LanguageModelSettings settings, Func<IProgress<TrainingProgress>, LanguageModelResult> train) =>
        TrainingDisplay.Run(title, settings.Steps, train, Describe(settings), plainLines: 40);

    /// <summary>The text beside the bar: step, losses, learning rate and tokens/s since this process started training.</summary>
    /// <summary>The folder of brown-lm or brown-lm-tiny, training it first (with the live display) if it is not cached.</summary>
    internal static string EnsureBrownLanguageModel(string name, string? cacheRoot, IProgress<string>? log)
    {
        var settings = BrownLanguageModel.Settings(name);
        return TrainingDisplay.Run($"Training {name.ToLowerInvariant()} (first use)", settings.Steps,
            progress => BrownLanguageModel.EnsureTrained(name, cacheRoot, progress, log), Describe(settings), plainLines: 40);
    }

    internal static Func<TrainingProgress, string> Describe(LanguageModelSettings settings)
    {
        Stopwatch? clock = null;
        int firstStep = 0;
        return p =>
        {
            // Measured from the first step this process reports, so a resumed run's rate is its own.
            if (clock is null) { clock = Stopwatch.StartNew(); firstStep = p.Step; }
            double seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-3);
            string rate = p.Step > firstStep ? $"{(p.Step - firstStep) * (double)settings.TokensPerStep / seconds,6:0} tok/s" : "     … tok/s";
            string validation = p.TestLoss is double v ? $"  val {v:0.000}" : "";
            return $"step {p.Step,5}/{p.TotalSteps}  loss {p.Loss:0.000}{validation}  lr {p.LearningRate:0.0e0}  {rate}";
        };
    }

    static int Report(LanguageModelResult result)
    {
        using var model = result.Model;
        var r = result.Record;
        if (r.ResumedFrom is int from) Console.WriteLine($"Resumed from the checkpoint at step {from}.");
        Console.WriteLine($"Trained {r.TrainLosses.Length} steps in {r.ElapsedSeconds:0.0} s ({r.TokensPerSecond:0} tokens/s); {r.TrainTokens:N0} training tokens, {r.ValidationTokens:N0} validation tokens ({r.ValidationWords:N0} words).");
        if (r.InitialValidationLoss is double initial) Console.WriteLine($"Validation loss of the base on this corpus: {initial:0.0000} nats/token.");
        Console.WriteLine($"Validation loss {r.ValidationLoss:0.0000} nats/token (perplexity {r.Perplexity:0.00}); {r.ValidationLossPerWord:0.0000} nats/word (perplexity {r.PerplexityPerWord:0.0}).");
        Console.WriteLine($"Saved: {result.Folder}");
        return 0;
    }

    sealed class Callback<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
