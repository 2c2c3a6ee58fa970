using System.CommandLine;
using System.Reflection;
using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens learn`: the chapters and the learner's progress; start, solution, check.</summary>
public static class LearnCommand
{
    public static Command Create()
    {
        var command = new Command("learn",
            "The learning track: chapters of exercises in C# (a transformer from scratch, ...), each a file-based app you " +
            "edit and run with `dotnet run chapterN.cs`, checked against SharpLens's own implementation with a message " +
            "that says what is wrong.\n\nWithout a subcommand: the chapters and your progress.\n\n" +
            "Example: sharplens learn start 1 --dir learn && cd learn && dotnet run chapter1.cs");
        command.SetAction(_ => CommandErrors.Run(List));
        command.Subcommands.Add(Start());
        command.Subcommands.Add(Solution());
        command.Subcommands.Add(Check());
        return command;
    }

    static Option<bool> NotebookOption() => new("--notebook") { Description = "Write the chapter as a .NET Interactive notebook (chapterN.ipynb: markdown cells for the explanations, a code cell per exercise, a last cell that checks them)." };

    static Argument<int> ChapterArgument() => new("chapter") { Description = "The chapter's number (sharplens learn lists them)." };

    static Command Start()
    {
        var chapter = ChapterArgument();
        var dir = new Option<string>("--dir") { Description = "The folder to write the chapter into.", DefaultValueFactory = _ => "sharplens-learn" };
        var force = new Option<bool>("--force") { Description = "Overwrite the chapter file if it exists (your work in it is lost)." };
        var notebook = NotebookOption();
        var command = new Command("start", "Write a chapter's exercises (stubs that throw NotImplementedException, with explanations and hints) as a file-based app, or with --notebook as a .NET Interactive notebook.");
        command.Arguments.Add(chapter);
        command.Options.Add(dir);
        command.Options.Add(force);
        command.Options.Add(notebook);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            if (parse.GetValue(notebook))
            {
                string written = ChapterNotebook.Write(parse.GetValue(chapter), ChapterVariant.Stub, parse.GetValue(dir)!, PackageVersion(), parse.GetValue(force));
                var chapterInfo = Chapters.Get(parse.GetValue(chapter));
                Console.WriteLine($"Chapter {chapterInfo.Number}, {chapterInfo.Title}: {chapterInfo.Exercises.Count} exercises in {written}");
                Console.WriteLine($"Open it in VS Code with the Polyglot Notebooks extension (or Jupyter with the .NET kernel) and run the cells; it references the SharpLens.Cpu package {PackageVersion()}.");
                return 0;
            }
            string path = Chapters.Write(parse.GetValue(chapter), ChapterVariant.Stub, parse.GetValue(dir)!, Header(), parse.GetValue(force));
            var info = Chapters.Get(parse.GetValue(chapter));
            Console.WriteLine($"Chapter {info.Number}, {info.Title}: {info.Exercises.Count} exercises in {path}");
            Console.WriteLine($"Next: cd {Path.GetDirectoryName(path)} && dotnet run {info.FileName}   (the first run builds, then every exercise is checked)");
            Console.WriteLine($"  or: sharplens learn check {path}   (the same checks, without a build)");
            return 0;
        }));
        return command;
    }

    static Command Solution()
    {
        var chapter = ChapterArgument();
        var dir = new Option<string>("--dir") { Description = "The folder to write the solutions into.", DefaultValueFactory = _ => "sharplens-learn-solutions" };
        var force = new Option<bool>("--force") { Description = "Overwrite the file if it exists." };
        var notebook = NotebookOption();
        var command = new Command("solution", "Write a chapter's worked solutions (every exercise passes its check), for when you are stuck.");
        command.Arguments.Add(chapter);
        command.Options.Add(dir);
        command.Options.Add(force);
        command.Options.Add(notebook);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            string path = parse.GetValue(notebook)
                ? ChapterNotebook.Write(parse.GetValue(chapter), ChapterVariant.Solution, parse.GetValue(dir)!, PackageVersion(), parse.GetValue(force))
                : Chapters.Write(parse.GetValue(chapter), ChapterVariant.Solution, parse.GetValue(dir)!, Header(), parse.GetValue(force));
            Console.WriteLine($"Solutions of chapter {parse.GetValue(chapter)}: {path}");
            return 0;
        }));
        return command;
    }

    static Command Check()
    {
        var file = new Argument<string>("file") { Description = "The chapter file you edited (e.g. sharplens-learn/chapter1.cs)." };
        var exercises = new Argument<string[]>("exercise") { Description = "Check only these exercises (default: all).", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("check",
            "Compile a chapter file and check its exercises against SharpLens's own implementation: what passes, and for what " +
            "does not, what is wrong (shape, dtype, a constant factor, a mask in the wrong place, ...). Exit 0 when all pass, 1 otherwise.");
        command.Arguments.Add(file);
        command.Arguments.Add(exercises);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            var report = ChapterCompiler.RunFile(parse.GetValue(file)!, parse.GetValue(exercises) ?? []);
            if (report is null)
            {
                Console.Error.WriteLine($"{parse.GetValue(file)} ran but checked nothing: its top-level code should call the chapter's Check (as `sharplens learn start` writes it).");
                return 2;
            }
            return report.AllPassed ? 0 : 1;
        }));
        return command;
    }

    static int List()
    {
        var progress = LearnProgress.Load();
        Console.WriteLine("SharpLens learning track (sharplens learn start N to begin a chapter):");
        foreach (var chapter in Chapters.All)
        {
            string key = chapter.Number.ToString(System.Globalization.CultureInfo.InvariantCulture);
            string state = "not started";
            if (progress.Chapters.TryGetValue(key, out var p))
            {
                int passed = chapter.Exercises.Count(e => p.Exercises.TryGetValue(e, out var s) && s == "passed");
                state = $"{passed}/{chapter.Exercises.Count} pass (checked {p.CheckedUtc:yyyy-MM-dd HH:mm} UTC, {p.File})";
                var next = chapter.Exercises.FirstOrDefault(e => !(p.Exercises.TryGetValue(e, out var s) && s == "passed"));
                if (next is not null) state += $"; next: {next}";
            }
            Console.WriteLine($"  {chapter.Number}. {chapter.Title,-30} {chapter.Exercises.Count,2} exercises  {state}");
        }
        Console.WriteLine($"Progress file: {LearnProgress.PathFor()}");
        return 0;
    }

    /// <summary>A chapter file's directives: this checkout's library project when the CLI runs from one, else the package of this version.</summary>
    public static string Header() => Chapters.Header(RepositoryRoot(), PackageVersion());

    static string? RepositoryRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "SharpLens.slnx")) && File.Exists(Path.Combine(d.FullName, "src", "SharpLens", "SharpLens.csproj")))
                return d.FullName;
        return null;
    }

    static string PackageVersion()
    {
        string v = typeof(Chapters).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.1.0";
        return v.Split('+')[0];
    }
}
