using System.CommandLine;
using SharpLens.Tracing;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens plan`: run a JSON trace plan on a model and write what it saved to an .npz file.</summary>
public static class PlanCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var planOption = new Option<string>("--plan") { Description = "The plan: a JSON file in the SharpLens plan schema (README, Tracing).", Required = true };
        var outOption = new Option<string>("--out") { Description = "Where to write the saved values: .npz, one array per saved name (name.stepK per generation step, plus 'generated').", Required = true };
        var command = new Command("plan",
            "Run a trace plan — reads, writes, saves and stops at TransformerLens hooks, as JSON — on a model, and write the saved values to a NumPy .npz file. " +
            "The plan is validated before anything runs.\n\n" +
            "Example: sharplens plan --model induction --plan patch.json --out result.npz");
        model.AddTo(command);
        command.Options.Add(planOption);
        command.Options.Add(outOption);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var plan = TracePlanJson.Load(parse.GetValue(planOption)!);
            using var loaded = model.LoadAny(parse);
            using var result = loaded.Encoder is { } encoder ? encoder.Run(plan) : loaded.Decoder!.Run(plan);
            string path = parse.GetValue(outOption)!;
            result.SaveNpz(path);
            foreach (var (name, value) in result.Arrays()) Console.WriteLine($"  {name,-32} {ShapeText.Of(value.shape)}");
            Console.WriteLine($"Wrote {result.Arrays().Count()} arrays to {Path.GetFullPath(path)}{(result.Stopped ? " (the plan stopped the forward pass early)" : "")}");
            return 0;
        }));
        return command;
    }
}
