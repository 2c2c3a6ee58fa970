using System.CommandLine;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Techniques;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens heads`: head detector scores and attention summaries on generated repeated random sequences.</summary>
public static class HeadsCommand
{
    /// <summary>Order of the first axis of the .npy file.</summary>
    public static readonly string[] ScoreOrder = ["previous_token", "duplicate_token", "induction"];

    public static Command Create()
    {
        var model = new ModelArguments();
        var seqLen = new Option<int?>("--seq-len")
        {
            Description = "Length N of the random block that is repeated: each sequence is BOS, N random tokens, the same N again. " +
                          "Default: 20, or less if the model's context is shorter.",
        };
        var batch = new Option<int>("--batch") { Description = "How many sequences to average over.", DefaultValueFactory = _ => 16 };
        var seed = new Option<long>("--seed") { Description = "Seed for the random tokens.", DefaultValueFactory = _ => 0 };
        var output = new Option<string?>("--out")
        {
            Description = "Also write the scores to this .npy file: float32 [3, n_layers, n_heads], first axis in the order " +
                          "previous-token, duplicate-token, induction.",
        };
        var command = new Command("heads",
            "Score every attention head as a previous-token, duplicate-token and induction head.\n\n" +
            "The model reads random token sequences that repeat themselves (BOS, r1..rN, r1..rN). A head's score is the " +
            "average attention it puts where that kind of head would look: the token just before (previous-token), an " +
            "earlier copy of the current token (duplicate-token), or the token after that earlier copy (induction). " +
            "1 means all of its attention, 0 none. The table also shows where each head's attention goes on average " +
            "(to BOS, to itself, to the previous token) and how spread out it is (entropy in nats).\n\n" +
            "Example: sharplens heads --model induction --out scores.npy");
        model.AddTo(command);
        foreach (var option in new Option[] { seqLen, batch, seed, output }) command.Options.Add(option);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var m = model.Load(parse);
            return Run(m, parse.GetValue(seqLen), parse.GetValue(batch), parse.GetValue(seed), parse.GetValue(output));
        }));
        return command;
    }

    /// <summary>Scores <paramref name="model"/>'s heads, prints the table, writes the .npy if asked; returns the exit code.</summary>
    public static int Run(HookedTransformer model, int? seqLen, int batch, long seed, string? outPath)
    {
        var config = model.Config;
        int maxHalf = (config.NCtx - (config.BosTokenId is null ? 0 : 1)) / 2;
        int half = seqLen ?? Math.Min(20, maxHalf);
        if (batch < 1) throw new ArgumentException($"--batch must be at least 1; got {batch}.", "--batch");
        var tokens = HeadDetectors.RepeatedRandomTokens(config, half, batch, new Generator((ulong)seed)); // [batch, 2N (+1)]
        var scores = HeadDetectors.ScoreHeads(model, tokens);
        var summary = AttentionSummary.Compute(model, [tokens]);

        var table = new Table().Title($"{config.ModelName}: head scores on {batch} repeated random sequences of {tokens.shape[1]} tokens");
        foreach (var column in new[] { "head", "prev-token", "dup-token", "induction", "to BOS", "to self", "entropy" })
            table.AddColumn(new TableColumn(column).RightAligned());
        foreach (var row in summary.Rows)
        {
            var (l, h) = (row.Head.Layer, row.Head.Head);
            table.AddRow(row.Head.ToString(), $"{scores.PreviousToken[l, h]:0.000}", $"{scores.DuplicateToken[l, h]:0.000}",
                $"{scores.Induction[l, h]:0.000}", $"{row.ToBos:0.000}", $"{row.ToSelf:0.000}", $"{row.Entropy:0.000}");
        }
        AnsiConsole.Write(table);
        Console.WriteLine($"Top previous-token head: {HeadScores.Ranked(scores.PreviousToken)[0]}");
        Console.WriteLine($"Top duplicate-token head: {HeadScores.Ranked(scores.DuplicateToken)[0]}");
        Console.WriteLine($"Top induction head:      {HeadScores.Ranked(scores.Induction)[0]}");

        if (outPath is not null)
        {
            var array = ToArray(scores); // [3, n_layers, n_heads]
            NumpyFiles.SaveNpy(outPath, array);
            Console.WriteLine($"Scores: {Path.GetFullPath(outPath)}  float32 [3, {scores.Layers}, {scores.Heads}] = [{string.Join(", ", ScoreOrder)}] × layer × head");
        }
        return 0;
    }

    /// <summary>float32 [3, n_layers, n_heads] in the order of <see cref="ScoreOrder"/>.</summary>
    public static Tensor ToArray(HeadScores scores)
    {
        var kinds = new[] { scores.PreviousToken, scores.DuplicateToken, scores.Induction };
        var flat = kinds.SelectMany(k => k.Cast<double>()).Select(v => (float)v).ToArray();
        return tensor(flat).reshape(3, scores.Layers, scores.Heads);
    }
}
