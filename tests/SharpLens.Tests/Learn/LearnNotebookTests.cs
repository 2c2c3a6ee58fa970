using System.Text.Json.Nodes;
using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>
/// `sharplens learn start N --notebook`: every chapter as a .NET Interactive notebook (nbformat 4.5, the .NET C# kernel),
/// an introduction, a package cell, a markdown and a code cell per exercise and a check cell; and the notebook's code
/// cells, compiled as one C# script as the kernel runs them, pass (solutions) or are not started (stubs).
/// </summary>
[Collection("learn")]
public sealed class LearnNotebookTests
{
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");

    public static TheoryData<int> ChapterNumbers => [.. Chapters.All.Select(c => c.Number)];

    [Theory]
    [MemberData(nameof(ChapterNumbers))]
    public void A_chapter_notebook_has_an_introduction_a_package_cell_two_cells_per_exercise_and_a_check_cell(int number)
    {
        var chapter = Chapters.Get(number);
        var root = JsonNode.Parse(ChapterNotebook.Render(number, ChapterVariant.Stub, "1.2.3"))!;
        Assert.Equal(4, (int)root["nbformat"]!);
        Assert.Equal(5, (int)root["nbformat_minor"]!);
        Assert.Equal(".net-csharp", (string?)root["metadata"]!["kernelspec"]!["name"]);
        var cells = root["cells"]!.AsArray();
        string Text(JsonNode cell) => string.Concat(cell["source"]!.AsArray().Select(l => (string?)l));
        foreach (var cell in cells)
        {
            var source = cell!["source"]!.AsArray().Select(l => (string)l!).ToList();
            Assert.All(source.SkipLast(1), l => Assert.EndsWith("\n", l)); // nbformat: each line but the last ends in a newline
            if ((string?)cell["cell_type"] == "code") Assert.NotNull(cell["outputs"]);
        }
        Assert.Equal("markdown", (string?)cells[0]!["cell_type"]);
        Assert.StartsWith($"# Chapter {number}", Text(cells[0]!));
        Assert.DoesNotContain("dotnet run", Text(cells[0]!));
        Assert.Equal("code", (string?)cells[1]!["cell_type"]);
        Assert.StartsWith("#r \"nuget: SharpLens.Cpu, 1.2.3\"\n", Text(cells[1]!));
        Assert.Contains("using SharpLens.Learn;", Text(cells[1]!));
        for (int e = 0; e < chapter.Exercises.Count; e++)
        {
            string heading = $"## {e + 1}. {chapter.Exercises[e]}";
            int at = cells.Select((c, i) => (c, i)).Single(x => (string?)x.c!["cell_type"] == "markdown" && Text(x.c!).StartsWith(heading, StringComparison.Ordinal)).i;
            var code = cells[at + 1]!;
            Assert.Equal("code", (string?)code["cell_type"]);
            Assert.Contains($" {chapter.Exercises[e]}(", Text(code));
            Assert.Contains("throw new NotImplementedException();", Text(code));
            Assert.DoesNotContain("public static", Text(code));
        }
        string check = Text(cells[^1]!);
        Assert.Contains($"Chapter{number}.Check([], new Chapter{number}.Exercises", check);
        Assert.Contains($"file: Path.GetFullPath(\"chapter{number}.ipynb\")", check);
        Assert.DoesNotContain("Exercises.", check.Replace($"Chapter{number}.Exercises", ""));
        Assert.Equal(chapter.Exercises.Count, cells.Sum(c => Text(c!).Split("throw new NotImplementedException();").Length - 1));
        Assert.StartsWith("Checker.InProcess = true;", check); // the kernel is the only process there is

        // `sharplens learn check` reads the same cells as one script: no package directive, and the checker's own
        // setting decides where the checks run (child processes in the CLI).
        string script = ChapterCompiler.NotebookScript(ChapterNotebook.Render(number, ChapterVariant.Stub, "1.2.3"), "chapter.ipynb");
        Assert.DoesNotContain("\n#r ", "\n" + script);
        Assert.DoesNotContain("\nChecker.InProcess = true;", "\n" + script);
        Assert.Contains("//Checker.InProcess = true;", script);
    }

    /// <summary>
    /// The kernel compiles each cell on its own, in order, so a cell may call only functions of earlier cells (and its
    /// own); one script (what <c>sharplens learn check</c> compiles) would hide a call to a later cell. Chapter 4's
    /// SumDirections once came after the exercises that call it: CS0103 in the kernel.
    /// </summary>
    [Theory]
    [MemberData(nameof(ChapterNumbers))]
    public void A_notebook_cell_calls_only_functions_defined_in_it_or_earlier_cells(int number)
    {
        var cells = JsonNode.Parse(ChapterNotebook.Render(number, ChapterVariant.Solution, "1.2.3"))!["cells"]!.AsArray()
            .Where(c => (string?)c!["cell_type"] == "code").Select(c => string.Concat(c!["source"]!.AsArray().Select(l => (string?)l))).ToList();
        var definedIn = new Dictionary<string, int>();
        for (int i = 0; i < cells.Count; i++)
            foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(cells[i], @"^[A-Za-z][\w<>\[\], ]*?\s(\w+)\(", System.Text.RegularExpressions.RegexOptions.Multiline))
                definedIn[m.Groups[1].Value] = i;
        Assert.NotEmpty(definedIn);
        for (int i = 0; i < cells.Count; i++)
            foreach (var (name, at) in definedIn)
                Assert.False(at > i && System.Text.RegularExpressions.Regex.IsMatch(cells[i], $@"\b{name}\b"),
                    $"code cell {i} uses {name}, which only code cell {at} defines");
    }

    static CheckReport RunNotebook(int number, ChapterVariant variant)
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        string path = Path.Combine(Dir, $"chapter{number}.ipynb");
        var report = ChapterCompiler.RunNotebook(ChapterNotebook.Render(number, variant, "0.1.0"), path, []);
        Assert.NotNull(report);
        return report;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(5)]
    public void A_solution_notebook_run_as_the_kernel_runs_it_passes_every_exercise_and_writes_the_page(int number)
    {
        string page = LearnPages.Reset(Path.Combine(Dir, $"chapter{number}.ipynb"));
        var report = RunNotebook(number, ChapterVariant.Solution);
        Assert.Equal(Chapters.Get(number).Exercises, report.Results.Select(r => r.Name));
        foreach (var r in report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
        Assert.True(File.Exists(page), $"the notebook's check should write {page}");
    }

    [Fact]
    public void A_stub_notebook_is_not_started()
    {
        var report = RunNotebook(5, ChapterVariant.Stub);
        Assert.All(report.Results, r => Assert.Equal(ExerciseStatus.NotStarted, r.Status));
    }

    [Fact]
    public void Learn_check_reads_a_notebook_file()
    {
        string path = Path.Combine(Dir, "notebook-check", "chapter5.ipynb");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, ChapterNotebook.Render(5, ChapterVariant.Solution, "0.1.0"));
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        var report = ChapterCompiler.RunFile(path, ["NormalizeMatrix"]);
        Assert.NotNull(report);
        Assert.Equal(ExerciseStatus.Passed, report["NormalizeMatrix"].Status);
        Assert.Equal(path, report.SourceFile);
    }
}
