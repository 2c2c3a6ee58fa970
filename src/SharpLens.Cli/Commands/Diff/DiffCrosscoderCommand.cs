using System.CommandLine;
using SharpLens.Diffing;
using SharpLens.Training;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens diff crosscoder`: train a crosscoder on both models' activations at a hook, analyse it, write the folder, analysis.json and a report.</summary>
public static class DiffCrosscoderCommand
{
    public static Command Create()
    {
        var args = new DiffArguments();
        var hook = new Option<string>("--hook") { Description = "The hook both models are read at, e.g. blocks.6.hook_resid_post.", Required = true };
        var architecture = new Option<string>("--architecture") { Description = "batchtopk (BatchTopK crosscoder, threshold at inference) or l1 (ReLU + L1 with CROSSCODER code normalisation).", DefaultValueFactory = _ => "batchtopk" };
        var k = new Option<int>("--k") { Description = "BatchTopK: latents per token (annealed down to it from 10 k).", DefaultValueFactory = _ => 100 };
        var expansion = new Option<int>("--expansion") { Description = "Latents = expansion × d_model (unless --dict-size is given).", DefaultValueFactory = _ => 16 };
        var dictSize = new Option<int?>("--dict-size") { Description = "Number of latents." };
        var l1 = new Option<double>("--l1") { Description = "L1: the penalty λ (μ) on Σ_i f_i Σ_m ‖W_dec^m_i‖, on inputs normalised to RMS norm 1.", DefaultValueFactory = _ => 0.1 };
        var lr = new Option<double?>("--lr") { Description = "Adam learning rate (default: 1e-3 for l1, 2e-4/√(latents/16384) for batchtopk; warm-up 5%, decay over the last 20%)." };
        var shared = new Option<int>("--shared-latents") { Description = "Designated shared latents (one decoder for both models, L1 penalty × 0.2), Anthropic's 2025 mitigation.", DefaultValueFactory = _ => 0 };
        var tokens = new Option<long>("--tokens") { Description = "Training tokens (position 0, BOS and padding do not count).", DefaultValueFactory = _ => 1_000_000 };
        var batch = new Option<int>("--batch-size") { Description = "Tokens per training step.", DefaultValueFactory = _ => 2048 };
        var heldOut = new Option<int>("--held-out") { Description = "Held-out contexts for the analysis and dashboards.", DefaultValueFactory = _ => 256 };
        var outFolder = new Option<string>("--out") { Description = "The folder to write: config.json + model.safetensors (dictionary_learning), analysis.json, report.html.", Required = true };
        var command = new Command("crosscoder",
            "Train a crosscoder over the same hook of the base and the fine-tune (paired activations: same tokens, same positions, shuffled " +
            "in a bounded buffer), then read it: per-latent decoder norms, the relative decoder norm (1 = fine-tune-only), shared/exclusive " +
            "tags, decoder cosines, latent scaling (ν^ε, ν^r), and dashboards of the exclusive latents.\n\n" +
            "Examples:\n  sharplens diff crosscoder --base trigger-base --finetuned trigger-finetuned --hook blocks.1.hook_resid_post --k 4 --expansion 8 --tokens 600000 --out cc-trigger\n" +
            "  sharplens diff crosscoder --base brown-lm-tiny --finetuned lm-news --hook blocks.2.hook_resid_post --corpus brown --out cc-news");
        args.AddTo(command);
        foreach (var option in new Option[] { hook, architecture, k, expansion, dictSize, l1, lr, shared, tokens, batch, heldOut, outFolder }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var arch = parse.GetValue(architecture) switch
            {
                "batchtopk" => CrossCoderArchitecture.BatchTopK, "l1" => CrossCoderArchitecture.L1,
                var other => throw new CliArgumentException($"--architecture '{other}' is not known: use batchtopk or l1."),
            };
            if (parse.GetValue(tokens) < 1 || parse.GetValue(batch) < 1 || parse.GetValue(heldOut) < 1) throw new CliArgumentException("--tokens, --batch-size and --held-out must be positive.");
            using var subjects = args.Load(parse);
            int contextSize = parse.GetValue(args.ContextSize) ?? subjects.DefaultContextSize;
            long seed = parse.GetValue(args.Seed);
            var data = args.Data(parse);
            var heldOutRows = subjects.Contexts(data, contextSize, heldOut: true, seed).Take(parse.GetValue(heldOut)).ToArray();
            if (heldOutRows.Length == 0) throw new CliArgumentException("The text gave no held-out context; give more text or a smaller --context-size.");
            using var heldOutTokens = torch.tensor(heldOutRows.SelectMany(r => r).ToArray(), [heldOutRows.Length, contextSize]); // [contexts, pos]
            var options = new CrossCoderDiffOptions
            {
                Hook = parse.GetValue(hook)!, Architecture = arch, K = parse.GetValue(k), Expansion = parse.GetValue(expansion), DictSize = parse.GetValue(dictSize),
                Tokens = parse.GetValue(tokens), BatchSize = parse.GetValue(batch), LearningRate = parse.GetValue(lr), L1Penalty = parse.GetValue(l1),
                SharedLatents = parse.GetValue(shared), Seed = seed, ModelNames = subjects.Names,
            };
            int steps = (int)Math.Ceiling(options.Tokens / (double)options.BatchSize);
            string folder = parse.GetValue(outFolder)!;
            Console.WriteLine($"Training a {parse.GetValue(architecture)} crosscoder on {subjects.BaseName} and {subjects.FinetunedName} at {options.Hook}: {steps} steps of {options.BatchSize} tokens.");
            CrossCoderTrainingProgress? last = null;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var result = TrainingDisplay.Run($"crosscoder {options.Hook}", steps, progress =>
                CrossCoderDiff.Run([subjects.Base, subjects.Finetuned], subjects.Contexts(data, contextSize, heldOut: false, seed), heldOutTokens, options, folder,
                    subjects.ToStrTokens, new Callback(p => { last = p; progress.Report(new TrainingProgress(p.Step, p.TotalSteps, p.Loss, p.LearningRate, clock.Elapsed)); }),
                    subjects.ExcludedTokenIds()),
                _ => last is { } p ? $"L0 {p.L0,6:0.0}  expl. var. {string.Join("/", p.ExplainedVariance.Select(v => v.ToString("P0")))}  dead {p.DeadLatents}{(arch == CrossCoderArchitecture.BatchTopK ? $"  k {p.K}" : "")}" : "starting");
            using (result.CrossCoder)
            {
                var r = result.Record;
                Console.WriteLine($"Held out: explained variance {string.Join(", ", r.Models.Zip(r.ExplainedVariance).Select(p => $"{p.First} {p.Second:P1}"))}; L0 {r.L0:0.0}.");
                Console.WriteLine($"Latents: {string.Join(", ", r.Counts.Select(c => $"{c.Value} {c.Key}"))} (relative norm: 1 = fine-tune-only).");
                Console.WriteLine($"Most fine-tune-only: {string.Join(", ", r.MostFinetuneOnly.Take(8).Select(i => $"#{i} ({r.Latents[i].RelativeNorm:0.00})"))}");
                if (r.Training is { } t)
                    Console.WriteLine($"Training: {t.Tokens:N0} tokens in {t.Seconds:0.0} s ({t.TokensPerSecond:N0} tokens/s{(t.FractionOfCeiling is { } f ? $", {f:P0} of the GEMM ceiling {t.GemmCeilingTokensPerSecond:N0}" : "")}); buffer {t.BufferBytes / 1e6:0.0} MB.");
                Console.WriteLine($"Wrote {result.Folder} (config.json, model.safetensors, analysis.json, report.html)");
            }
            return 0;
        }));
        return command;
    }

    sealed class Callback(Action<CrossCoderTrainingProgress> report) : IProgress<CrossCoderTrainingProgress>
    {
        public void Report(CrossCoderTrainingProgress value) => report(value);
    }
}
