using System.Text.RegularExpressions;
using SharpLens.Native;
using TorchSharp;

namespace SharpLens.Learn;

/// <summary>Where an exercise stands after a check.</summary>
public enum ExerciseStatus { Passed, Failed, NotStarted, Blocked }

/// <summary>One exercise's verdict: what the learner reads.</summary>
public sealed record ExerciseResult(string Name, ExerciseStatus Status, string Message);

/// <summary>All the exercises of one check of a chapter file.</summary>
public sealed record CheckReport(int Chapter, string? SourceFile, IReadOnlyList<ExerciseResult> Results)
{
    public int Passed => Results.Count(r => r.Status == ExerciseStatus.Passed);
    public bool AllPassed => Results.All(r => r.Status == ExerciseStatus.Passed);
    public ExerciseResult this[string name] => Results.Single(r => r.Name == name);
}

/// <summary>A check that failed, with the message that says what is wrong (and, where known, why).</summary>
public sealed class CheckFailure(string message) : SharpLensException(message);

/// <summary>
/// One exercise: its name (the learner's method), the exercises its solution calls (checked first; a failure there
/// blocks this one), and the check that runs the learner's code against SharpLens's own implementation.
/// </summary>
public sealed record Exercise(string Name, string Summary, IReadOnlyList<string> DependsOn, Action Check);

/// <summary>
/// Runs a chapter's exercises and says, for each, what is wrong — never a stack trace. A chapter file's top-level
/// code calls a chapter's <c>Check</c>, which calls <see cref="Run"/>; <c>sharplens learn check</c> compiles the
/// same file and reads <see cref="LastReport"/> after running it.
/// </summary>
public static class Checker
{
    /// <summary>How long one exercise's check may run before it is reported as stuck.</summary>
    public static TimeSpan ExerciseTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>The report of the last <see cref="Run"/> in this process (what <c>sharplens learn check</c> reads).</summary>
    public static CheckReport? LastReport { get; private set; }

    /// <summary>Set by <c>sharplens learn check</c>: the file it compiled (a file-based app knows only its own name).</summary>
    public static string? SourceFileOverride { get; set; }

    /// <summary>Write progress to the learner's progress file (off in tests).</summary>
    public static bool RecordProgress { get; set; } = true;

    /// <summary>Where a check prints; null: the console.</summary>
    public static TextWriter? Output { get; set; }

    /// <summary>Run the checks in this process (tests do, on code known not to make libtorch abort); otherwise in a child process.</summary>
    public static bool InProcess { get; set; }

    static readonly List<(string Caption, string Svg)> Figures = [];

    /// <summary>
    /// Adds a chart of the learner's own numbers (inline SVG from <see cref="Reports.Svg"/>) to the chapter's page,
    /// <c>chapterN.html</c> beside the chapter file, written when the check ends. A check calls it once its values pass.
    /// </summary>
    public static void Plot(string caption, string svg)
    {
        lock (Figures) Figures.Add((caption, svg));
    }

    /// <summary>The path of the page of <paramref name="sourceFile"/>'s plots: the chapter file's name with .html.</summary>
    public static string PagePath(string sourceFile) => Path.ChangeExtension(Path.GetFullPath(sourceFile), ".html");

    /// <summary>Writes the plots collected by this check (if any) as one self-contained HTML page beside the chapter file.</summary>
    static void WritePage(int chapter, string? sourceFile, IReadOnlyList<ExerciseResult> results, TextWriter output)
    {
        List<(string Caption, string Svg)> figures;
        lock (Figures) { figures = [.. Figures]; Figures.Clear(); }
        if (sourceFile is null || figures.Count == 0) return;
        string title = Chapters.All.FirstOrDefault(c => c.Number == chapter)?.Title ?? $"Chapter {chapter}";
        var page = new Reports.HtmlReport($"Chapter {chapter}: {title} — your plots")
            .Paragraph($"Plots of your own code's numbers from {Path.GetFileName(sourceFile)}, drawn when its exercises passed " +
                $"({results.Count(r => r.Status == ExerciseStatus.Passed)} of {results.Count} checked here pass). Check again to redraw them.", "lead");
        foreach (var (caption, svg) in figures) page.Raw($"<figure>{svg}<figcaption>{Reports.HtmlReport.Escape(caption)}</figcaption></figure>");
        string path = PagePath(sourceFile);
        try
        {
            page.Save(path);
            output.WriteLine($"Your plots: {path}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            output.WriteLine($"Your plots could not be written to {path}: {e.Message}");
        }
    }

    const string ChildVariable = "SHARPLENS_LEARN_CHILD", PriorVariable = "SHARPLENS_LEARN_PRIOR", Protocol = "@@sharplens-learn ";

    /// <summary>
    /// Checks a chapter's exercises in order (or those named in <paramref name="args"/>), prints one line per exercise,
    /// records progress, and returns the exit code: 0 when every exercise checked passes, 1 otherwise.
    /// </summary>
    /// <remarks>
    /// A libtorch error (a shape mismatch in a matmul, say) ends the whole process on some hosts instead of raising an
    /// exception, so the checks run in a child process — this same program, started again — and a child that dies is
    /// reported as a failure of the exercise it was checking (with libtorch's message), and a new child checks the
    /// rest. A child silent for <see cref="ExerciseTimeout"/> is stopped the same way (an endless loop).
    /// </remarks>
    public static int Run(int chapter, string[] args, IReadOnlyList<string> names, Func<IReadOnlyList<Exercise>> build, string? sourceFile = null)
    {
        var output = Output ?? Console.Out;
        sourceFile = SourceFileOverride ?? sourceFile;
        var wanted = args.Where(a => !a.StartsWith('-')).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var name in wanted)
            if (!names.Any(e => string.Equals(e, name, StringComparison.OrdinalIgnoreCase)))
                throw new SharpLensArgumentException("exercise", $"Chapter {chapter} has no exercise '{name}'; its exercises are {string.Join(", ", names)}.");
        bool child = System.Environment.GetEnvironmentVariable(ChildVariable) == "1";
        lock (Figures) Figures.Clear();
        if (child)
        {
            var prior = DecodePrior(System.Environment.GetEnvironmentVariable(PriorVariable));
            var childResults = RunChecks(build(), wanted, prior, sourceFile,
                start: name => { Console.Out.WriteLine(Protocol + "start " + name); Console.Out.Flush(); },
                done: r => { Console.Out.WriteLine(Protocol + "result " + Encode(r)); Console.Out.Flush(); });
            LastReport = new CheckReport(chapter, sourceFile, childResults);
            WritePage(chapter, sourceFile, childResults, Console.Out);
            return 0;
        }
        output.WriteLine($"Chapter {chapter}: checking {(sourceFile is null ? "your exercises" : Path.GetFileName(sourceFile))} against SharpLens's own implementation");
        var results = InProcess
            ? RunChecks(build(), wanted, [], sourceFile, start: _ => { }, done: r => output.WriteLine(Format(r)))
            : RunInChildren(names, wanted, output);
        if (InProcess) WritePage(chapter, sourceFile, results, output);
        var report = new CheckReport(chapter, sourceFile, results);
        LastReport = report;
        output.WriteLine(report.AllPassed
            ? $"All {report.Results.Count} exercises pass."
            : $"{report.Passed} of {report.Results.Count} exercises pass.");
        if (RecordProgress) LearnProgress.Record(report);
        return report.AllPassed ? 0 : 1;
    }

    static List<ExerciseResult> RunChecks(IReadOnlyList<Exercise> exercises, HashSet<string> wanted, Dictionary<string, ExerciseResult> prior,
        string? sourceFile, Action<string> start, Action<ExerciseResult> done)
    {
        TorchNative.EnsureLoaded();
        var results = new List<ExerciseResult>();
        var byName = new Dictionary<string, ExerciseResult>(prior);
        foreach (var exercise in exercises)
        {
            if (wanted.Count > 0 && !wanted.Contains(exercise.Name)) continue;
            if (prior.ContainsKey(exercise.Name)) continue; // decided by an earlier child
            var blockedBy = exercise.DependsOn.Where(d => byName.TryGetValue(d, out var r) && r.Status != ExerciseStatus.Passed).ToList();
            ExerciseResult result;
            if (blockedBy.Count > 0)
                result = new(exercise.Name, ExerciseStatus.Blocked, $"waits for {string.Join(", ", blockedBy)}: it calls {(blockedBy.Count == 1 ? "it" : "them")}, so make {(blockedBy.Count == 1 ? "that" : "those")} pass first.");
            else
            {
                start(exercise.Name);
                result = RunOne(exercise, sourceFile);
            }
            results.Add(result);
            byName[exercise.Name] = result;
            done(result);
        }
        return results;
    }

    static List<ExerciseResult> RunInChildren(IReadOnlyList<string> names, HashSet<string> wanted, TextWriter output)
    {
        var decided = new Dictionary<string, ExerciseResult>();
        var order = names.Where(n => wanted.Count == 0 || wanted.Contains(n)).ToList();
        while (order.Any(n => !decided.ContainsKey(n)))
        {
            var (current, stderr, timedOut, started) = RunChild(decided, output);
            if (current is not null && !decided.ContainsKey(current))
            {
                var crash = timedOut
                    ? new ExerciseResult(current, ExerciseStatus.Failed, $"did not finish within {ExerciseTimeout.TotalSeconds:0} s: an endless loop?")
                    : new ExerciseResult(current, ExerciseStatus.Failed, CrashMessage(stderr));
                decided[current] = crash;
                output.WriteLine(Format(crash));
            }
            else if (!started || current is null)
            {
                // The child died before checking anything new: report the rest rather than loop.
                string why = CrashMessage(stderr);
                foreach (var n in order.Where(n => !decided.ContainsKey(n)))
                {
                    decided[n] = new ExerciseResult(n, ExerciseStatus.Failed, "the check could not run: " + why);
                    output.WriteLine(Format(decided[n]));
                }
            }
        }
        return [.. order.Select(n => decided[n])];
    }

    /// <summary>Starts this program again as a child that checks what <paramref name="decided"/> does not hold yet; returns the exercise it was on when it stopped.</summary>
    static (string? Current, string Stderr, bool TimedOut, bool Started) RunChild(Dictionary<string, ExerciseResult> decided, TextWriter output)
    {
        string exe = System.Environment.ProcessPath ?? throw new SharpLensInternalException("The process has no path to start a checking child from.");
        var argv = System.Environment.GetCommandLineArgs();
        var start = new System.Diagnostics.ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in Path.GetFileNameWithoutExtension(exe) == "dotnet" ? argv : argv.Skip(1)) start.ArgumentList.Add(a);
        start.Environment[ChildVariable] = "1";
        start.Environment[PriorVariable] = string.Join(";", decided.Values.Select(Encode));
        var lines = new System.Collections.Concurrent.BlockingCollection<string?>();
        var stderr = new System.Text.StringBuilder();
        using var process = System.Diagnostics.Process.Start(start)!;
        process.OutputDataReceived += (_, e) => lines.Add(e.Data);
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) { if (stderr.Length < 20000) stderr.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string? current = null;
        bool started = false, timedOut = false;
        while (true)
        {
            // Before its first exercise a child builds the chapter's reference (chapter 2 may train the organism first).
            if (!lines.TryTake(out var line, started ? ExerciseTimeout : TimeSpan.FromMinutes(30)))
            {
                timedOut = true;
                try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                break;
            }
            if (line is null) break; // end of the child's output
            if (line.StartsWith(Protocol + "start ", StringComparison.Ordinal)) { current = line[(Protocol.Length + 6)..]; started = true; }
            else if (line.StartsWith(Protocol + "result ", StringComparison.Ordinal))
            {
                var r = Decode(line[(Protocol.Length + 7)..]);
                decided[r.Name] = r;
                output.WriteLine(Format(r));
                started = true;
                if (r.Name == current) current = null;
            }
            else output.WriteLine(line);
        }
        process.WaitForExit();
        lock (stderr) return (current, stderr.ToString(), timedOut, started);
    }

    /// <summary>What a child's dying words say: libtorch's "what():" line when there is one.</summary>
    static string CrashMessage(string stderr)
    {
        var what = stderr.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("what():", StringComparison.Ordinal));
        if (what is not null)
            return $"libtorch stopped the program: {what["what():".Length..].Trim()}. Check the shapes: print string.Join(\", \", x.shape) before the line. " +
                "(TorchSharp's matmul ends the program on such a mistake; x.MatMul(y), with using SharpLens;, throws an exception naming both shapes instead.)";
        var last = stderr.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("at ", StringComparison.Ordinal)).FirstOrDefault();
        return last is null ? "the program stopped without a message." : $"the program stopped: {last}";
    }

    static string Encode(ExerciseResult r) => $"{r.Name},{(int)r.Status},{Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(r.Message))}";

    static ExerciseResult Decode(string text)
    {
        var parts = text.Split(',');
        return new(parts[0], (ExerciseStatus)int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(parts[2])));
    }

    static Dictionary<string, ExerciseResult> DecodePrior(string? text) =>
        string.IsNullOrEmpty(text) ? [] : text.Split(';').Select(Decode).ToDictionary(r => r.Name);

    /// <summary>One line per exercise: a mark, the name, and what is wrong.</summary>
    public static string Format(ExerciseResult r) => r.Status switch
    {
        ExerciseStatus.Passed => $"  ✓ {r.Name}",
        ExerciseStatus.NotStarted => $"  · {r.Name}: {r.Message}",
        ExerciseStatus.Blocked => $"  ○ {r.Name}: {r.Message}",
        _ => $"  ✗ {r.Name}: {r.Message}",
    };

    static ExerciseResult RunOne(Exercise exercise, string? sourceFile)
    {
        try
        {
            using var scope = torch.NewDisposeScope();
            exercise.Check();
            return new(exercise.Name, ExerciseStatus.Passed, "passes");
        }
        catch (Exception e) { return Explain(exercise.Name, e, sourceFile); }
    }

    /// <summary>What an exception out of the learner's code means, in one paragraph, with the learner's line.</summary>
    public static ExerciseResult Explain(string name, Exception e, string? sourceFile)
    {
        while (e is AggregateException { InnerException: { } inner }) e = inner;
        if (e is System.Reflection.TargetInvocationException { InnerException: { } target }) e = target;
        if (e is CheckFailure failure) return new(name, ExerciseStatus.Failed, failure.Message);
        if (e is NotImplementedException)
            return new(name, ExerciseStatus.NotStarted, "not started (it still throws NotImplementedException).");
        string line = LearnerLine(e, sourceFile) is { } l ? $" (at {l})" : "";
        string first = (e.Message.Split('\n').FirstOrDefault() ?? "").Trim();
        string what = e switch
        {
            TensorOperationException => $"the shapes do not fit{line}: {first.TrimEnd('.')}. Print them (string.Join(\", \", x.shape)) before the line.",
            System.Runtime.InteropServices.ExternalException => $"TorchSharp refused an operation{line}: {first}. Check the shapes: print x.shape (string.Join(\", \", x.shape)) before the line.",
            IndexOutOfRangeException or ArgumentOutOfRangeException => $"an index is out of range{line}: {first}",
            NullReferenceException => $"something was null{line}: {first}",
            _ => $"threw {e.GetType().Name}{line}: {first}",
        };
        return new(name, ExerciseStatus.Failed, what);
    }

    static readonly Regex FrameLine = new(@" in (?<file>.+?\.cs):line (?<line>\d+)", RegexOptions.CultureInvariant);

    /// <summary>"chapter1.cs line 57": the first frame of the stack in the learner's file (from the stack's text, so no reflection).</summary>
    internal static string? LearnerLine(Exception e, string? sourceFile)
    {
        if (e.StackTrace is null) return null;
        foreach (Match m in FrameLine.Matches(e.StackTrace))
        {
            string file = m.Groups["file"].Value;
            bool learner = sourceFile is not null
                ? string.Equals(Path.GetFileName(file), Path.GetFileName(sourceFile), StringComparison.Ordinal)
                : !file.Contains($"{Path.DirectorySeparatorChar}SharpLens{Path.DirectorySeparatorChar}", StringComparison.Ordinal);
            if (learner) return $"{Path.GetFileName(file)} line {m.Groups["line"].Value}";
        }
        return null;
    }
}
