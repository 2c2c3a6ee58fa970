using System.CommandLine;
using System.Text.Json;
using SharpLens.Organisms;
using SharpLens.Plots;
using SharpLens.Training.Data;
using SharpLens.Training.LanguageModels;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens lm-eval`: what a trained language model has learned (<see cref="LanguageModelEvaluation"/>).</summary>
static class LmEvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = $"A folder `sharplens train` wrote, one of its checkpoints (OUT.checkpoints/step-N, e.g. to follow a run over training), or {string.Join(" / ", BrownLanguageModel.Names)} (trained on first use).", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "A folder with the tokenizer.json of a checkpoint's run (default: the finished folder OUT beside OUT.checkpoints)." };
        var corpus = new Option<string>("--corpus") { Description = "The corpus whose validation split is measured (the one it was trained on).", DefaultValueFactory = _ => "brown" };
        var outFolder = new Option<string?>("--out") { Description = "Folder for findings.json and loss-by-position.png (default: print only)." };
        var cache = new Option<string?>("--cache") { Description = "Cache root (default: $SHARPLENS_CACHE, else ~/.cache/sharplens)." };
        var command = new Command("lm-eval", "Measure a language model on its validation split: loss per token and per word against unigram and bigram baselines, loss by position (in-context learning), induction heads on repeated real text, next-word accuracy by Brown part of speech, and generations.");
        foreach (var option in new Option[] { model, tokenizer, corpus, outFolder, cache }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            string folder = parse.GetValue(model)!;
            string? root = parse.GetValue(cache);
            if (BrownLanguageModel.IsName(folder)) folder = TrainCommand.EnsureBrownLanguageModel(folder, root, new ConsoleLog());
            var f = LanguageModelEvaluation.Run(folder, parse.GetValue(corpus)!, root, log: new ConsoleLog(), tokenizerFolder: parse.GetValue(tokenizer));
            Print(f);
            if (parse.GetValue(outFolder) is { } output)
            {
                Directory.CreateDirectory(output);
                SharpLens.IO.AtomicFile.WriteAllText(Path.Combine(output, "findings.json"), JsonSerializer.Serialize(f, TrainingDataJson.Default.LanguageModelFindings));
                PlotFiles.LinePlot(Path.Combine(output, "loss-by-position.png"), [("validation loss", f.LossByPosition)],
                    $"{f.Model}: loss by token position", "position in the window", "loss (nats)");
                Console.WriteLine($"Wrote {Path.GetFullPath(Path.Combine(output, "findings.json"))} and loss-by-position.png");
            }
            return 0;
        }));
        return command;
    }

    static void Print(LanguageModelFindings f)
    {
        var b = f.Baselines;
        Console.WriteLine($"{f.Model}: validation loss {f.ValidationLoss:0.000} nats/token (perplexity {f.Perplexity:0.0}), {f.ValidationLossPerWord:0.000} nats/word (perplexity {f.PerplexityPerWord:0})");
        Console.WriteLine($"  baselines on the same {b.Predictions:N0} predictions: unigram {b.Unigram:0.000}, bigram {b.Bigram:0.000} (λ = {b.BigramLambda})");
        int n = f.LossByPosition.Length;
        var marks = new[] { 1, 2, 4, 8, 16, 32, 64, 128, 256, 512 }.Where(p => p <= n).Append(n).Distinct();
        Console.WriteLine($"  loss by position: {string.Join(", ", marks.Select(p => $"{p}: {f.LossByPosition[p - 1]:0.00}"))}; ICL score {f.InContextLearningScore:0.000}");
        Console.WriteLine($"  induction heads (repeated validation text): {string.Join(", ", f.InductionHeads.Take(5))}; loss on the first copy {f.RepeatLossFirst:0.00}, second copy {f.RepeatLossSecond:0.00}");
        Console.WriteLine($"  previous-token heads: {string.Join(", ", f.PreviousTokenHeads.Take(3))}");
        if (!double.IsNaN(f.NextWordAccuracy))
            Console.WriteLine($"  next-word accuracy {f.NextWordAccuracy:P1}: {string.Join(", ", f.PartOfSpeech.Select(p => $"{p.Group} {p.Accuracy:P0} ({p.Words:N0})"))}");
        foreach (var g in f.Generations)
        {
            Console.WriteLine($"  \"{g.Prompt}\" → greedy: {g.Greedy.ReplaceLineEndings(" ")}");
            Console.WriteLine($"  {new string(' ', g.Prompt.Length + 4)}  sampled: {g.Sampled.ReplaceLineEndings(" ")}");
        }
    }
}
