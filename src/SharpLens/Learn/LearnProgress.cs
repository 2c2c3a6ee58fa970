using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.IO;
using SharpLens.Organisms;

namespace SharpLens.Learn;

/// <summary>One chapter's last check: which exercises passed, in which file, when.</summary>
public sealed record ChapterProgress
{
    public required string File { get; init; }
    public required DateTime CheckedUtc { get; init; }
    public required Dictionary<string, string> Exercises { get; init; } // name → passed / failed / not-started / blocked
}

/// <summary>The learner's progress file: chapter number → its last check.</summary>
public sealed record LearnProgressFile
{
    public Dictionary<string, ChapterProgress> Chapters { get; init; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(LearnProgressFile))]
internal sealed partial class LearnJson : JsonSerializerContext;

/// <summary>
/// Where the learner stands: &lt;cache&gt;/learn/progress.json (cache: $SHARPLENS_CACHE or ~/.cache/sharplens), written
/// by every check, whether it ran as <c>dotnet run chapter1.cs</c> or as <c>sharplens learn check</c>.
/// </summary>
public static class LearnProgress
{
    public static string PathFor(string? root = null) => Path.Combine(OrganismCache.Root(root), "learn", "progress.json");

    /// <summary>The progress so far; an unreadable file counts as none (it is rewritten by the next check).</summary>
    public static LearnProgressFile Load(string? root = null)
    {
        string path = PathFor(root);
        if (!File.Exists(path)) return new();
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), LearnJson.Default.LearnProgressFile) ?? new(); }
        catch (JsonException) { return new(); }
    }

    public static void Record(CheckReport report, string? root = null)
    {
        var progress = Load(root);
        string key = report.Chapter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var exercises = progress.Chapters.TryGetValue(key, out var old) && old.File == (report.SourceFile ?? old.File)
            ? new Dictionary<string, string>(old.Exercises) : [];
        foreach (var r in report.Results) exercises[r.Name] = StatusName(r.Status);
        progress.Chapters[key] = new ChapterProgress
        {
            File = report.SourceFile is null ? "" : Path.GetFullPath(report.SourceFile),
            CheckedUtc = DateTime.UtcNow,
            Exercises = exercises,
        };
        string path = PathFor(root);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        AtomicFile.WriteAllText(path, JsonSerializer.Serialize(progress, LearnJson.Default.LearnProgressFile));
    }

    public static string StatusName(ExerciseStatus s) => s switch
    {
        ExerciseStatus.Passed => "passed",
        ExerciseStatus.NotStarted => "not-started",
        ExerciseStatus.Blocked => "blocked",
        _ => "failed",
    };
}
