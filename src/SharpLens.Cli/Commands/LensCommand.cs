using System.CommandLine;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Reports;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens lens`: the logit lens as a [n_layers + 1, positions, d_vocab] float32 .npy of log-probs.</summary>
public static class LensCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var outOption = new Option<string>("--out") { Description = "Where to write the log-probs (.npy, float32, [n_layers + 1, positions, d_vocab]).", Required = true };
        var topOption = new Option<int>("--top") { Description = "How many top tokens to print per layer at the last position.", DefaultValueFactory = _ => 3 };
        var html = new Option<string?>("--html") { Description = "Also write a self-contained HTML report: the target token's rank and probability per layer at the last position." };
        var target = new Option<long?>("--target-token") { Description = "The token the HTML report follows (default: the model's own top prediction at the last position)." };
        var command = new Command("lens",
            "Logit lens: read the residual stream before each layer as if it were the last (final norm, then unembedding). " +
            "Row l of the output is blocks.l.hook_resid_pre; the last row is the model's own prediction. Shows at which layer " +
            "the model's guess for the next token takes shape.\n\n" +
            "Example: sharplens lens --model induction --tokens \"0 5 9 12 5 9\" --out lens.npy");
        model.AddTo(command);
        prompt.AddTo(command);
        command.Options.Add(outOption);
        command.Options.Add(topOption);
        command.Options.Add(html);
        command.Options.Add(target);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            UncaughtNativeCalls.SetNumThreads(Math.Min(4, Environment.ProcessorCount));
            using var m = model.Load(parse);
            var tokens = prompt.Read(parse, m);
            using var lens = LogitLens.Run(m, tokens);
            string path = parse.GetValue(outOption)!;
            NumpyFiles.SaveNpy(path, lens.LogProbs[.., 0].to(ScalarType.Float32).contiguous()); // [n_layers + 1, pos, d_vocab]

            int last = (int)tokens.shape[1] - 1, k = Math.Max(1, parse.GetValue(topOption));
            Console.WriteLine($"Top {k} next-token guesses at the last position ({PromptArguments.Describe(m, tokens[0, last].item<long>())}):");
            for (int row = 0; row < lens.Rows; row++)
            {
                var top = lens.TopTokens(row, last, k);
                Console.WriteLine($"  {lens.RowNames[row],-26} " + string.Join("   ", top.Select(t => $"{PromptArguments.Describe(m, t.Token)} {t.Probability:0.000}")));
            }
            Console.WriteLine($"Wrote {Path.GetFullPath(path)}  [{lens.Rows}, {tokens.shape[1]}, {m.Config.DVocab}] float32 log-probs");
            if (parse.GetValue(html) is { } report)
            {
                long token = parse.GetValue(target) ?? lens.TopTokens(lens.Rows - 1, last, 1)[0].Token;
                LogitLensReport.Build(m, lens, token).Save(report);
                Console.WriteLine($"Wrote {Path.GetFullPath(report)}");
            }
            return 0;
        }));
        return command;
    }
}
