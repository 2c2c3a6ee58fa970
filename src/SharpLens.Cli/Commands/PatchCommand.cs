using System.CommandLine;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Plots;
using SharpLens.Reports;
using SharpLens.Techniques.Patching;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens patch`: denoising activation patching of one component, written as .npy (and a PNG heatmap).</summary>
public static class PatchCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var clean = new Option<string?>("--clean") { Description = "The clean prompt (text; BOS is prepended)." };
        var corrupted = new Option<string?>("--corrupted") { Description = "The corrupted prompt: the same number of tokens, changed so the answer changes." };
        var cleanTokens = new Option<string?>("--clean-tokens") { Description = "The clean prompt as token ids, comma- or space-separated (instead of --clean)." };
        var corruptedTokens = new Option<string?>("--corrupted-tokens") { Description = "The corrupted prompt as token ids (instead of --corrupted)." };
        var answer = new Option<string?>("--answer") { Description = "The clean prompt's next token as text, one token (e.g. \" Mary\")." };
        var wrong = new Option<string?>("--wrong") { Description = "The corrupted prompt's next token as text, one token." };
        var answerToken = new Option<long?>("--answer-token") { Description = "The answer as a token id (instead of --answer)." };
        var wrongToken = new Option<long?>("--wrong-token") { Description = "The wrong answer as a token id (instead of --wrong)." };
        var component = new Option<string>("--component")
        {
            Description = "What to patch: resid_pre, resid_mid, resid_post, attn_out, mlp_out (by layer and position) or z (by head).",
            Required = true,
        };
        component.AcceptOnlyFromAmong("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z");
        var output = new Option<string>("--out") { Description = "The .npy file to write: float32 [n_layers, positions] ([n_layers, n_heads] for z).", Required = true };
        var png = new Option<bool>("--png") { Description = "Also write a PNG heatmap beside the .npy (same name, .png)." };
        var html = new Option<string?>("--html") { Description = "Also write a self-contained HTML report (heatmap inline as SVG) to this file." };

        var command = new Command("patch",
            "Activation patching: run the corrupted prompt, put back one clean activation at a time, and measure how much of the " +
            "clean answer returns. Metric: logit difference answer − wrong at the last position, normalised so corrupted = 0 and clean = 1.");
        model.AddTo(command);
        foreach (var option in new Option[] { clean, corrupted, cleanTokens, corruptedTokens, answer, wrong, answerToken, wrongToken, component, output, png, html })
            command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var m = model.Load(parse);
            using var pairs = Pairs(m, parse.GetValue(clean), parse.GetValue(corrupted), parse.GetValue(cleanTokens), parse.GetValue(corruptedTokens),
                parse.GetValue(answer), parse.GetValue(wrong), parse.GetValue(answerToken), parse.GetValue(wrongToken));
            return Run(m, pairs, parse.GetValue(component)!, parse.GetValue(output)!, parse.GetValue(png), parse.GetValue(html));
        }));
        return command;
    }

    static int Run(HookedTransformer model, PromptPairs pairs, string component, string output, bool png, string? html)
    {
        var options = new PatchingOptions
        {
            Progress = new Progress<PatchingProgress>(p => Console.Error.Write($"\r{p.Sweep}: {p.CellsDone}/{p.Cells} cells, {p.ForwardPasses} forward passes")),
        };
        using var result = ActivationPatching.Sweep(model, pairs, component, options: options);
        Console.Error.WriteLine();
        NumpyFiles.SaveNpy(output, result.Values);
        Console.WriteLine($"clean logit diff {result.CleanMetric:0.000}, corrupted {result.CorruptedMetric:0.000}; {component} {ShapeText.Of(result.Values.shape)} ({string.Join(", ", result.Dims)}) → {Path.GetFullPath(output)}");
        if (png)
        {
            string image = Path.ChangeExtension(output, ".png");
            var table = result.ToArray2D();
            IReadOnlyList<string>? columns = component == "z" ? null : PatchingReport.TokenLabels(model, pairs);
            PlotFiles.Heatmap(image, table, $"Activation patching: {component} (1 = clean restored)", "layer",
                component == "z" ? "head" : "position", columnLabels: columns);
            Console.WriteLine($"heatmap → {Path.GetFullPath(image)}");
        }
        if (html is not null)
        {
            PatchingReport.Build(model, pairs, result).Save(html);
            Console.WriteLine($"report → {Path.GetFullPath(html)}");
        }
        return 0;
    }

    internal static PromptPairs Pairs(HookedTransformer model, string? clean, string? corrupted, string? cleanTokens, string? corruptedTokens,
        string? answer, string? wrong, long? answerToken, long? wrongToken)
    {
        bool text = clean is not null || corrupted is not null, ids = cleanTokens is not null || corruptedTokens is not null;
        if (text == ids || (text && (clean is null || corrupted is null)) || (ids && (cleanTokens is null || corruptedTokens is null)))
            throw new ArgumentException("Give either --clean and --corrupted (text) or --clean-tokens and --corrupted-tokens (ids), not a mix.", "--clean");
        bool answerText = answer is not null || wrong is not null, answerIds = answerToken is not null || wrongToken is not null;
        if (answerText == answerIds || (answerText && (answer is null || wrong is null)) || (answerIds && (answerToken is null || wrongToken is null)))
            throw new ArgumentException("Give either --answer and --wrong (text) or --answer-token and --wrong-token (ids), not a mix.", "--answer");
        long a = answerToken ?? model.ToSingleToken(answer!), w = wrongToken ?? model.ToSingleToken(wrong!);
        if (text) return PromptPairs.FromTexts(model, [clean!], [corrupted!], [a], [w]);
        var cleanIds = ParseIds(cleanTokens!, "--clean-tokens");
        var corruptedIds = ParseIds(corruptedTokens!, "--corrupted-tokens");
        if (cleanIds.Length != corruptedIds.Length)
            throw new ArgumentException($"--clean-tokens has {cleanIds.Length} ids but --corrupted-tokens has {corruptedIds.Length}; they must be the same length.", "--corrupted-tokens");
        return PromptPairs.FromTokens(cleanIds, corruptedIds, a, w);
    }

    static long[] ParseIds(string text, string option) =>
        [.. text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries).Select(s => long.TryParse(s, out long id) ? id
            : throw new ArgumentException($"{option}: '{s}' is not a token id; give integers separated by commas or spaces.", option))];
}
