using System.CommandLine;
using SharpLens.Projects;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens project`: a mini-project folder, its recorded runs, and its write-up.</summary>
public static class ProjectCommand
{
    public static Command Create()
    {
        var command = new Command("project",
            "Mini-projects: a folder with a research log (dated entries: question, hypothesis, what was run, what was seen), a " +
            "file-based app to start from and a fixed seed; every run recorded (command, commit, seed, version, machine, wall " +
            "time, output files and their hashes); one self-contained HTML write-up.\n\n" +
            "Example: sharplens project new induction-circuit --template induction && cd induction-circuit && " +
            "sharplens project run -- sharplens heads --model induction --seed 0 --out heads.npy && sharplens project report");
        command.Subcommands.Add(New());
        command.Subcommands.Add(Run());
        command.Subcommands.Add(Rerun());
        command.Subcommands.Add(Report());
        return command;
    }

    static Option<string> DirOption() => new("--dir") { Description = "The project folder.", DefaultValueFactory = _ => "." };

    static Command New()
    {
        var name = new Argument<string>("name") { Description = "The project's folder (created)." };
        var template = new Option<string?>("--template") { Description = $"Start from a worked example: {string.Join(", ", ProjectTemplates.All.Select(t => t.Name))}." };
        var seed = new Option<long>("--seed") { Description = "The seed every run records (and gets as SHARPLENS_SEED).", DefaultValueFactory = _ => 0 };
        var command = new Command("new", "Create a project folder: log.md, project.json, app.cs, runs/.");
        command.Arguments.Add(name);
        command.Options.Add(template);
        command.Options.Add(seed);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            string folder = parse.GetValue(name)!;
            var m = ResearchProject.New(folder, parse.GetValue(template), parse.GetValue(seed), LearnCommand.Header());
            Console.WriteLine($"Project {m.Name} in {Path.GetFullPath(folder)}{(m.Template is null ? "" : $" (template {m.Template})")}: log.md, app.cs, project.json");
            if (m.Template is not null)
                foreach (var c in ProjectTemplates.CommandsFor(ProjectTemplates.Get(m.Template), m.Seed)) Console.WriteLine($"  cd {folder} && sharplens project run -- {c}");
            return 0;
        }));
        return command;
    }

    static Command Run()
    {
        var dir = DirOption();
        var args = new Argument<string[]>("command") { Description = "The command, after --: sharplens ARGS (this SharpLens), dotnet run app.cs, or any program.", Arity = ArgumentArity.OneOrMore };
        var command = new Command("run", "Run a command in the project folder and record it in the log.");
        command.Options.Add(dir);
        command.Arguments.Add(args);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var r = ResearchProject.Run(parse.GetValue(dir)!, parse.GetValue(args)!, Self(), Console.Out);
            Console.WriteLine($"Recorded run {r.Index}: exit {r.ExitCode}, {r.WallSeconds:0.0} s, {r.Outputs.Count} output file(s).");
            return r.ExitCode == 0 ? 0 : 1;
        }));
        return command;
    }

    static Command Rerun()
    {
        var dir = DirOption();
        var command = new Command("rerun", "Run every recorded command again, in order, in a fresh copy of the project's inputs (runs/rerun/), and compare each output with the recorded one: identical bytes, or the same numbers (JSON, CSV, TSV, .npy) with only timings differing. Exit 0 when every compared file reproduced.");
        command.Options.Add(dir);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            string folder = parse.GetValue(dir)!;
            var results = ResearchProject.Rerun(folder, Self(), TextWriter.Null);
            foreach (var r in results)
                Console.WriteLine($"  {r.Outcome,-12} run {r.Run}  {r.Path}{(r.Detail.Length == 0 ? "" : "  (" + r.Detail + ")")}");
            int same = results.Count(r => r.Outcome is Reproduction.Identical or Reproduction.SameNumbers);
            int compared = results.Count(r => r.Outcome != Reproduction.NotCompared);
            Console.WriteLine($"Reproduced {same} of {compared} compared output files (identical, or the same numbers with only timings differing); " +
                              $"{results.Count - compared} figure(s)/page(s) not compared number by number. Details: {Path.Combine(folder, ResearchProject.RerunFile)}; " +
                              "`sharplens project report` adds them to the write-up.");
            return same == compared ? 0 : 1;
        }));
        return command;
    }

    static Command Report()
    {
        var dir = DirOption();
        var command = new Command("report", "Write report.html: the log, every run's figures, tables and output, and the commands that reproduce them.");
        command.Options.Add(dir);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            Console.WriteLine($"Wrote {ProjectReport.Write(parse.GetValue(dir)!)}");
            return 0;
        }));
        return command;
    }

    /// <summary>How to start this SharpLens again: the executable, or dotnet and this DLL.</summary>
    static IReadOnlyList<string> Self()
    {
        string exe = Environment.ProcessPath ?? "dotnet";
        string dll = typeof(ProjectCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? [exe, dll] : [exe];
    }
}
