using System.CommandLine;
using System.Text.Json;
using SharpLens.Diffing;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens diff weights`: per-parameter relative change, ranked by component and head.</summary>
public static class DiffWeightsCommand
{
    public static Command Create()
    {
        var args = new DiffArguments();
        var outFile = new Option<string>("--out") { Description = "The JSON file to write (parameters, components and heads, most changed first).", Required = true };
        var command = new Command("weights",
            "Weight diffs: ‖W_ft − W_base‖_F / ‖W_base‖_F for every parameter (read as stored, without weight processing), and per " +
            "component (blocks.L.attn, blocks.L.mlp, …) and attention head, most changed first.\n\n" +
            "Example: sharplens diff weights --base trigger-base --finetuned trigger-finetuned --out weights.json");
        args.AddTo(command, data: false);
        command.Options.Add(outFile);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var subjects = args.Load(parse, noProcessing: true);
            var diff = WeightDiff.Of(subjects.Base, subjects.Finetuned, subjects.BaseName, subjects.FinetunedName);
            string path = parse.GetValue(outFile)!;
            Reports.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(diff, DiffingJson.Default.WeightDiff));
            Console.WriteLine("Most changed components (‖ΔW‖ / ‖W‖):");
            foreach (var c in diff.Components.Take(8)) Console.WriteLine($"  {c.Component,-20} {c.RelativeChange,10:0.######}");
            if (diff.Heads.Count > 0) Console.WriteLine($"Most changed head: L{diff.Heads[0].Layer}H{diff.Heads[0].Head} ({diff.Heads[0].RelativeChange:0.######}).");
            Console.WriteLine($"Wrote {Path.GetFullPath(path)}");
            return 0;
        }));
        return command;
    }
}
