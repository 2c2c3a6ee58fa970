namespace SharpLens.Learn;

/// <summary>What a chapter file is written as: the exercises to fill in, or their worked solutions.</summary>
public enum ChapterVariant { Stub, Solution }

/// <summary>One chapter of the learning track.</summary>
public sealed record ChapterInfo(int Number, string Title, string FileName, IReadOnlyList<string> Exercises);

/// <summary>
/// The chapters of <c>sharplens learn</c>. Each is one C# file (an embedded resource, Learn/Chapters/chapterN.cs) with
/// its solutions between <c>//&gt; solution</c> and <c>//&lt; solution</c>: the stub variant replaces each such region
/// by <c>throw new NotImplementedException();</c>, the solution variant keeps it. The first line, <c>//:header</c>,
/// becomes the file-based app's directives (how it references SharpLens).
/// </summary>
public static class Chapters
{
    const string Begin = "//> solution", End = "//< solution", HeaderLine = "//:header";

    public static IReadOnlyList<ChapterInfo> All { get; } =
    [
        new(1, "A transformer from scratch", "chapter1.cs", Chapter1.ExerciseNames),
        new(2, "Hooks, caches and induction", "chapter2.cs", Chapter2.ExerciseNames),
        new(3, "Superposition and SAEs", "chapter3.cs", Chapter3.ExerciseNames),
        new(4, "Grokking", "chapter4.cs", Chapter4.ExerciseNames),
        new(5, "Attribution graphs", "chapter5.cs", Chapter5.ExerciseNames),
    ];

    public static ChapterInfo Get(int number) => All.FirstOrDefault(c => c.Number == number)
        ?? throw new SharpLensArgumentException("chapter", $"There is no chapter {number}; the chapters are {string.Join(", ", All.Select(c => $"{c.Number} ({c.Title})"))}.");

    /// <summary>The chapter's template, markers and all.</summary>
    public static string Template(int number)
    {
        var chapter = Get(number);
        using var stream = typeof(Chapters).Assembly.GetManifestResourceStream($"SharpLens.Learn.Chapters.{chapter.FileName}")
            ?? throw new SharpLensInternalException($"The template of chapter {number} ({chapter.FileName}) is not embedded in SharpLens.dll.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>The chapter as the learner gets it: <paramref name="header"/> (directives) first, then the stubs or solutions.</summary>
    public static string Render(int number, ChapterVariant variant, string header)
    {
        var output = new List<string>();
        bool inSolution = false;
        foreach (var line in Template(number).Replace("\r\n", "\n").Split('\n'))
        {
            string trimmed = line.Trim();
            if (trimmed == HeaderLine) { output.AddRange(header.TrimEnd('\n').Split('\n')); continue; }
            if (trimmed == Begin)
            {
                inSolution = true;
                if (variant == ChapterVariant.Stub) output.Add(line[..line.IndexOf(Begin, StringComparison.Ordinal)] + "throw new NotImplementedException();");
                continue;
            }
            if (trimmed == End) { inSolution = false; continue; }
            if (inSolution && variant == ChapterVariant.Stub) continue;
            output.Add(line);
        }
        return string.Join('\n', output);
    }

    /// <summary>
    /// The directives of a chapter file: from a SharpLens checkout, a reference to its library project (no packing,
    /// nothing to install); otherwise the SharpLens.Cpu package of this version.
    /// </summary>
    public static string Header(string? repositoryRoot, string packageVersion)
    {
        var lines = new List<string> { "#!/usr/bin/env -S dotnet run" };
        if (repositoryRoot is not null)
        {
            lines.Add($"#:project {Path.Combine(Path.GetFullPath(repositoryRoot), "src", "SharpLens", "SharpLens.csproj")}");
            lines.Add("#:package TorchSharp-cpu@0.107.0");
            lines.Add($"#:property RuntimeIdentifier={System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier}");
        }
        else lines.Add($"#:package SharpLens.Cpu@{packageVersion}");
        lines.Add("#:property PublishAot=false");
        lines.Add("#:property TreatWarningsAsErrors=false"); // a checkout's Directory.Build.props would make a learner's unused variable an error
        return string.Join('\n', lines) + '\n';
    }

    /// <summary>
    /// Writes chapter <paramref name="number"/> into <paramref name="folder"/> (created if need be) and returns its path.
    /// An existing file is kept unless <paramref name="overwrite"/>: it may hold the learner's work.
    /// </summary>
    public static string Write(int number, ChapterVariant variant, string folder, string header, bool overwrite = false)
    {
        var chapter = Get(number);
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, chapter.FileName);
        if (File.Exists(path) && !overwrite)
            throw new SharpLensArgumentException("--dir", $"{path} already exists (your work?); it was left as it is. Pass --force to overwrite it, or another --dir.");
        IO.AtomicFile.WriteAllText(path, Render(number, variant, header));
        return path;
    }
}
