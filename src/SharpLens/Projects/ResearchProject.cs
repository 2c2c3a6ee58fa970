using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.IO;

namespace SharpLens.Projects;

/// <summary>A mini-project's settings: its name, the template it came from, and the seeds every run gets.</summary>
public sealed record ProjectManifest
{
    public required string Name { get; init; }
    public string? Template { get; init; }
    public required DateTime CreatedUtc { get; init; }
    public long Seed { get; init; }
}

/// <summary>A file a run wrote or changed, with its SHA-256, so a re-run can be compared.</summary>
public sealed record OutputFile(string Path, long Bytes, string Sha256);

/// <summary>What <c>sharplens project run</c> records about one run.</summary>
public sealed record RunRecord
{
    public required int Index { get; init; }
    public required IReadOnlyList<string> Command { get; init; }
    public required DateTime StartedUtc { get; init; }
    public required double WallSeconds { get; init; }
    public required int ExitCode { get; init; }
    public string? GitCommit { get; init; }
    public required long Seed { get; init; }
    public required string SharpLensVersion { get; init; }
    public required string Machine { get; init; }
    public required string OutputLog { get; init; }
    public required IReadOnlyList<OutputFile> Outputs { get; init; }
}

/// <summary>How a re-made output compares with the recorded one.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Reproduction>))]
public enum Reproduction
{
    /// <summary>Byte for byte the same.</summary>
    Identical,
    /// <summary>A data file (JSON, CSV, TSV, .npy) whose numbers are all equal; only fields that hold timings differ.</summary>
    SameNumbers,
    /// <summary>A number, a value or a text differs (the detail says which).</summary>
    Differs,
    /// <summary>The re-run did not write the file.</summary>
    Missing,
    /// <summary>A figure or page (PNG, SVG, HTML) that differs in its bytes; it shows wall times, so its numbers are compared through the data files.</summary>
    NotCompared,
}

/// <summary>One recorded output of one run, re-made by <c>sharplens project rerun</c>.</summary>
public sealed record RerunResult(int Run, string Path, Reproduction Outcome, string Detail, int ExitCode, double WallSeconds);

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ProjectManifest))]
[JsonSerializable(typeof(List<RunRecord>))]
[JsonSerializable(typeof(List<RerunResult>))]
internal sealed partial class ProjectJson : JsonSerializerContext;

/// <summary>
/// A research mini-project folder: <c>project.json</c> (name, template, seed), <c>log.md</c> (dated entries:
/// question, hypothesis, what was run, what was seen), <c>app.cs</c> (a file-based app to start from),
/// <c>runs.json</c> and <c>runs/NNN.txt</c> (every recorded run and its output), and <c>report.html</c>.
/// </summary>
public static class ResearchProject
{
    public const string ManifestFile = "project.json", LogFile = "log.md", RunsFile = "runs.json", RunsFolder = "runs", ReportFile = "report.html", RerunFile = "rerun.json";

    /// <summary>The templates <c>sharplens project new --template</c> knows.</summary>
    public static IReadOnlyList<ProjectTemplate> Templates => ProjectTemplates.All;

    /// <summary>Creates <paramref name="folder"/> as a new project (refusing a folder that already holds one).</summary>
    public static ProjectManifest New(string folder, string? template = null, long seed = 0, string? appHeader = null)
    {
        var t = template is null ? null : ProjectTemplates.Get(template);
        if (File.Exists(Path.Combine(folder, ManifestFile)))
            throw new SharpLensArgumentException("NAME", $"{folder} already holds a project ({ManifestFile}); pick another name.");
        Directory.CreateDirectory(Path.Combine(folder, RunsFolder));
        var manifest = new ProjectManifest { Name = Path.GetFileName(Path.GetFullPath(folder)), Template = t?.Name, CreatedUtc = DateTime.UtcNow, Seed = seed };
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), JsonSerializer.Serialize(manifest, ProjectJson.Default.ProjectManifest));
        var log = new StringBuilder();
        log.AppendLine($"# {manifest.Name}").AppendLine();
        log.AppendLine(t is null ? "A SharpLens mini-project." : t.Summary).AppendLine();
        log.AppendLine($"## {DateTime.UtcNow:yyyy-MM-dd} — start").AppendLine();
        log.AppendLine($"**Question:** {t?.Question ?? "(what do you want to find out?)"}").AppendLine();
        log.AppendLine($"**Hypothesis:** {t?.Hypothesis ?? "(what do you expect, and what would change your mind?)"}").AppendLine();
        log.AppendLine("**Plan:**").AppendLine();
        if (t is not null) foreach (var c in ProjectTemplates.CommandsFor(t, seed)) log.AppendLine($"    sharplens project run -- {c}");
        else log.AppendLine("    sharplens project run -- dotnet run app.cs");
        log.AppendLine().AppendLine("Each run is recorded below (command, commit, seed, version, machine, time, output files and hashes).").AppendLine();
        AtomicFile.WriteAllText(Path.Combine(folder, LogFile), log.ToString());
        AtomicFile.WriteAllText(Path.Combine(folder, "app.cs"), (appHeader ?? "") + (t?.App ?? ProjectTemplates.DefaultApp));
        AtomicFile.WriteAllText(Path.Combine(folder, RunsFile), JsonSerializer.Serialize(new List<RunRecord>(), ProjectJson.Default.ListRunRecord));
        return manifest;
    }

    public static ProjectManifest Manifest(string folder)
    {
        string path = Path.Combine(folder, ManifestFile);
        if (!File.Exists(path))
            throw new SharpLensArgumentException("--dir", $"{Path.GetFullPath(folder)} is not a SharpLens project (no {ManifestFile}); create one with `sharplens project new NAME`, or pass --dir.");
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), ProjectJson.Default.ProjectManifest) ?? throw new JsonException("empty"); }
        catch (JsonException e) { throw new SharpLensFileException(path, null, $"{ManifestFile} is not valid: {e.Message}", e); }
    }

    public static List<RunRecord> Runs(string folder)
    {
        string path = Path.Combine(folder, RunsFile);
        if (!File.Exists(path)) return [];
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), ProjectJson.Default.ListRunRecord) ?? []; }
        catch (JsonException e) { throw new SharpLensFileException(path, null, $"{RunsFile} is not valid: {e.Message}", e); }
    }

    /// <summary>
    /// Runs <paramref name="command"/> in the project folder (a first word "sharplens" runs this SharpLens, through
    /// <paramref name="sharplens"/>), echoing its output, and records it: in runs.json, runs/NNN.txt and log.md.
    /// </summary>
    public static RunRecord Run(string folder, IReadOnlyList<string> command, IReadOnlyList<string> sharplens, TextWriter? echo = null)
    {
        if (command.Count == 0) throw new SharpLensArgumentException("COMMAND", "Give the command to run after --, e.g. sharplens project run -- sharplens heads --model induction --out heads.npy");
        var manifest = Manifest(folder);
        var runs = Runs(folder);
        var before = Snapshot(folder);
        var started = DateTime.UtcNow;
        var (exit, text, wall) = Execute(folder, command, sharplens, manifest.Seed, echo);
        var output = new StringBuilder(text);
        int index = runs.Count + 1;
        string logName = Path.Combine(RunsFolder, $"{index:000}.txt");
        AtomicFile.WriteAllText(Path.Combine(folder, logName), output.ToString());
        var after = Snapshot(folder);
        var outputs = after.Where(kv => !before.TryGetValue(kv.Key, out var old) || old != kv.Value)
            .Select(kv => kv.Key).Where(p => !IsBookkeeping(p)).Order(StringComparer.Ordinal)
            .Select(p => new OutputFile(p, new FileInfo(Path.Combine(folder, p)).Length, Sha256(Path.Combine(folder, p)))).ToList();
        var record = new RunRecord
        {
            Index = index, Command = [.. command], StartedUtc = started, WallSeconds = Math.Round(wall, 2), ExitCode = exit,
            GitCommit = GitCommit(folder), Seed = manifest.Seed, SharpLensVersion = Version, Machine = Machine(), OutputLog = logName, Outputs = outputs,
        };
        runs.Add(record);
        AtomicFile.WriteAllText(Path.Combine(folder, RunsFile), JsonSerializer.Serialize(runs, ProjectJson.Default.ListRunRecord));
        var entry = new StringBuilder();
        entry.AppendLine($"## {started:yyyy-MM-dd HH:mm} UTC — run {index}").AppendLine();
        entry.AppendLine($"**Ran:** `{CommandLine(command)}` (exit {exit}, {wall:0.0} s, seed {manifest.Seed}, SharpLens {Version}{(record.GitCommit is null ? "" : $", commit {record.GitCommit[..Math.Min(12, record.GitCommit.Length)]}")})").AppendLine();
        string wrote = outputs.Count == 0 ? "nothing new"
            : string.Join(", ", outputs.Take(8).Select(o => $"`{o.Path}`")) + (outputs.Count > 8 ? $" and {outputs.Count - 8} more (all in {RunsFile})" : "");
        entry.AppendLine($"**Wrote:** {wrote}").AppendLine();
        entry.AppendLine("**Seen:** (what did you see? what does it mean for the hypothesis?)").AppendLine();
        File.AppendAllText(Path.Combine(folder, LogFile), entry.ToString());
        return record;
    }

    /// <summary>
    /// Re-runs every recorded command, in order, in a fresh copy of the project's inputs (<c>runs/rerun/</c>: the files
    /// no run wrote), so nothing recorded is overwritten and no earlier output is resumed; then compares each recorded
    /// output with its re-made twin (<see cref="Reproduction"/>) and records the outcome in rerun.json and the log.
    /// </summary>
    public static IReadOnlyList<RerunResult> Rerun(string folder, IReadOnlyList<string> sharplens, TextWriter? echo = null)
    {
        var manifest = Manifest(folder);
        var runs = Runs(folder);
        if (runs.Count == 0) throw new SharpLensArgumentException("--dir", $"{Path.GetFullPath(folder)} has no recorded runs to re-run; record one with `sharplens project run -- COMMAND`.");
        string scratch = Path.Combine(folder, RunsFolder, "rerun");
        if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        Directory.CreateDirectory(scratch);
        var written = runs.SelectMany(r => r.Outputs).Select(o => o.Path).ToHashSet(StringComparer.Ordinal);
        foreach (var (relative, _) in Snapshot(folder))
        {
            if (written.Contains(relative) || IsBookkeeping(relative)) continue;
            string target = Path.Combine(scratch, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(Path.Combine(folder, relative), target);
        }
        var results = new List<RerunResult>();
        foreach (var run in runs)
        {
            var (exit, output, wall) = Execute(scratch, run.Command, sharplens, manifest.Seed, echo);
            AtomicFile.WriteAllText(Path.Combine(folder, RunsFolder, $"rerun-{run.Index:000}.txt"), output);
            foreach (var file in run.Outputs)
            {
                string original = Path.Combine(folder, file.Path), again = Path.Combine(scratch, file.Path);
                // A later run may have replaced this run's file: then only its recorded hash is left to compare with.
                bool originalIntact = File.Exists(original) && Sha256(original) == file.Sha256;
                var (outcome, detail) = !File.Exists(again) ? (Reproduction.Missing, "the re-run did not write it")
                    : Sha256(again) == file.Sha256 ? (Reproduction.Identical, "")
                    : originalIntact ? OutputComparison.Compare(original, again)
                    : (Reproduction.Differs, "its hash differs (the original was replaced by a later run, so only its hash is left)");
                results.Add(new RerunResult(run.Index, file.Path, outcome, detail, exit, Math.Round(wall, 2)));
            }
        }
        AtomicFile.WriteAllText(Path.Combine(folder, RerunFile), JsonSerializer.Serialize(results, ProjectJson.Default.ListRerunResult));
        int same = results.Count(r => r.Outcome is Reproduction.Identical or Reproduction.SameNumbers);
        int compared = results.Count(r => r.Outcome != Reproduction.NotCompared);
        var entry = new StringBuilder();
        entry.AppendLine($"## {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC — re-run").AppendLine();
        entry.AppendLine($"**Re-ran** all {runs.Count} recorded command(s) in `{RunsFolder}/rerun/`: {same} of {compared} compared output file(s) reproduced " +
                         $"(identical, or equal numbers with only timings differing); {results.Count - compared} figure(s)/page(s) not compared number by number.").AppendLine();
        foreach (var r in results.Where(r => r.Outcome is Reproduction.Differs or Reproduction.Missing))
            entry.AppendLine($"- run {r.Run} `{r.Path}`: {r.Detail}");
        entry.AppendLine();
        File.AppendAllText(Path.Combine(folder, LogFile), entry.ToString());
        return results;
    }

    /// <summary>The last re-run's results (rerun.json), or none.</summary>
    public static List<RerunResult> LastRerun(string folder)
    {
        string path = Path.Combine(folder, RerunFile);
        if (!File.Exists(path)) return [];
        try { return JsonSerializer.Deserialize(File.ReadAllText(path), ProjectJson.Default.ListRerunResult) ?? []; }
        catch (JsonException e) { throw new SharpLensFileException(path, null, $"{RerunFile} is not valid: {e.Message}; delete it and run `sharplens project rerun` again.", e); }
    }

    /// <summary>Runs <paramref name="command"/> in <paramref name="folder"/> with SHARPLENS_SEED set; its output, stdout and stderr interleaved.</summary>
    static (int Exit, string Output, double WallSeconds) Execute(string folder, IReadOnlyList<string> command, IReadOnlyList<string> sharplens, long seed, TextWriter? echo)
    {
        List<string> argv = command[0] == "sharplens" ? [.. sharplens, .. command.Skip(1)] : [.. command];
        var start = new ProcessStartInfo(argv[0]) { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in argv.Skip(1)) start.ArgumentList.Add(a);
        start.Environment["SHARPLENS_SEED"] = seed.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var output = new StringBuilder();
        var clock = Stopwatch.StartNew();
        try
        {
            using var process = Process.Start(start)!;
            void Take(string? line) { if (line is null) return; lock (output) { output.AppendLine(line); echo?.WriteLine(line); } }
            process.OutputDataReceived += (_, e) => Take(e.Data);
            process.ErrorDataReceived += (_, e) => Take(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            process.WaitForExit();
            lock (output) return (process.ExitCode, output.ToString(), clock.Elapsed.TotalSeconds);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new SharpLensArgumentException("COMMAND", $"Could not start '{argv[0]}': {e.Message}. Is it installed and on PATH?");
        }
    }

    public static string CommandLine(IEnumerable<string> command) =>
        string.Join(' ', command.Select(a => a.Length > 0 && a.All(c => char.IsLetterOrDigit(c) || "-_./=:@+,".Contains(c)) ? a : "'" + a.Replace("'", "'\\''") + "'"));

    static bool IsBookkeeping(string relative) =>
        relative is ManifestFile or LogFile or RunsFile or ReportFile or RerunFile || relative.StartsWith(RunsFolder + "/", StringComparison.Ordinal)
        || relative.Split('/') is var parts && (parts[0] == ".git" || parts.Contains("bin") || parts.Contains("obj")) || AtomicFile.IsTemporary(relative);

    static Dictionary<string, (long, DateTime)> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace('\\', '/'))
            .Where(r => !r.StartsWith(".git/", StringComparison.Ordinal))
            .ToDictionary(r => r, r => { var i = new FileInfo(Path.Combine(folder, r)); return (i.Length, i.LastWriteTimeUtc); });

    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    static string? GitCommit(string folder)
    {
        try
        {
            var start = new ProcessStartInfo("git") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "rev-parse", "HEAD" }) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            string text = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 && text.Length >= 7 ? text : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    static string Version => (typeof(ResearchProject).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyInformationalVersionAttribute), false)
        .OfType<System.Reflection.AssemblyInformationalVersionAttribute>().FirstOrDefault()?.InformationalVersion ?? "0.1.0").Split('+')[0];

    static string Machine() => $"{RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} cores, .NET {Environment.Version}";
}
