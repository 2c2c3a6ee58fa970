using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using SharpLens.Loading;

namespace SharpLens.Training;

/// <summary>
/// <c>manifest.json</c> in every checkpoint folder a trainer writes: each file's size and SHA-256, written last,
/// inside the temporary folder that is then renamed into place. Before a run resumes from a checkpoint the manifest is
/// checked, so a truncated or corrupted file (a full disk, a bad copy, a flipped bit) is refused by name instead of
/// being trained on; <see cref="Latest"/> then falls back to the newest checkpoint that passes.
/// </summary>
public static class CheckpointManifest
{
    public const string FileName = "manifest.json";
    const string Format = "sharplens-checkpoint/1";

    /// <summary>Hashes every file under <paramref name="folder"/> (but the manifest) into its manifest.json.</summary>
    public static void Write(string folder)
    {
        var files = new SortedDictionary<string, CheckpointFileEntry>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            string name = Path.GetRelativePath(folder, path).Replace('\\', '/');
            if (name == FileName) continue;
            files[name] = new CheckpointFileEntry(new FileInfo(path).Length, Sha256(path));
        }
        File.WriteAllText(Path.Combine(folder, FileName), IO.SharpLensJson.Serialize(new CheckpointManifestFile(Format, files)));
    }

    /// <summary>Whether the folder has a manifest (checkpoints written before manifests existed have none).</summary>
    public static bool Exists(string folder) => File.Exists(Path.Combine(folder, FileName));

    /// <summary>
    /// Checks every file the manifest lists: present, of its size, of its hash. Throws a <see cref="CheckpointException"/>
    /// naming the first file that is not. A folder without a manifest is refused too: it was never completed.
    /// </summary>
    public static void Verify(string folder)
    {
        string manifestPath = Path.Combine(folder, FileName);
        if (!File.Exists(manifestPath))
            throw new CheckpointException(manifestPath, null, "is missing, so the checkpoint cannot be checked (it was not completed, or written by a SharpLens without manifests).");
        CheckpointManifestFile? manifest;
        try { manifest = IO.SharpLensJson.Deserialize<CheckpointManifestFile>(File.ReadAllText(manifestPath)); }
        catch (JsonException e) { throw new CheckpointException(manifestPath, null, $"is not a checkpoint manifest ({e.Message}); the checkpoint is damaged."); }
        if (manifest is not { Format: Format, Files: { Count: > 0 } files })
            throw new CheckpointException(manifestPath, null, $"is not a {Format} manifest listing the checkpoint's files; the checkpoint is damaged.");
        foreach (var (name, entry) in files)
        {
            string path = Path.GetFullPath(Path.Combine(folder, name));
            if (!path.StartsWith(Path.GetFullPath(folder) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new CheckpointException(manifestPath, null, $"lists '{name}', which is outside the checkpoint folder; the manifest is damaged.");
            if (!File.Exists(path))
                throw new CheckpointException(path, null, "is missing, but the checkpoint's manifest lists it.");
            long length = new FileInfo(path).Length;
            if (length != entry.Bytes)
                throw new CheckpointException(path, null, $"is {length.ToString("N0", CultureInfo.InvariantCulture)} bytes, but the checkpoint's manifest says {entry.Bytes.ToString("N0", CultureInfo.InvariantCulture)}: the file is {(length < entry.Bytes ? "truncated" : "damaged")}.");
            if (!string.Equals(Sha256(path), entry.Sha256, StringComparison.OrdinalIgnoreCase))
                throw new CheckpointException(path, null, $"does not match the SHA-256 in the checkpoint's manifest ({entry.Sha256}): the file is corrupted.");
        }
    }

    /// <summary>
    /// The newest of <paramref name="checkpoints"/> whose manifest checks out (or that predates manifests, when
    /// <paramref name="acceptWithoutManifest"/>), by step. Each refused one is reported to <paramref name="log"/> with
    /// its reason and the checkpoint tried next; null when none is usable.
    /// </summary>
    public static T? Latest<T>(IEnumerable<T> checkpoints, Func<T, int> step, Func<T, string> folder, Action<string>? log, bool acceptWithoutManifest = true)
        where T : class
    {
        var newestFirst = checkpoints.OrderByDescending(step).ToList();
        for (int i = 0; i < newestFirst.Count; i++)
        {
            var c = newestFirst[i];
            if (acceptWithoutManifest && !Exists(folder(c))) return c;
            try { Verify(folder(c)); return c; }
            catch (CheckpointException e)
            {
                string next = i + 1 < newestFirst.Count ? $"falling back to the checkpoint at step {step(newestFirst[i + 1])}" : "no earlier checkpoint is left, so training starts from the beginning";
                log?.Invoke($"Checkpoint at step {step(c)} refused: {e.Message} {char.ToUpperInvariant(next[0])}{next[1..]}.");
            }
        }
        return null;
    }

    /// <summary>The <c>step-N</c> folders under <paramref name="root"/> (the SAE and crosscoder trainers' checkpoints), by step.</summary>
    public static IReadOnlyList<StepFolder> StepFolders(string root)
    {
        if (!Directory.Exists(root)) return [];
        var found = new List<StepFolder>();
        foreach (var folder in Directory.EnumerateDirectories(root, "step-*"))
            if (int.TryParse(Path.GetFileName(folder)["step-".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int step))
                found.Add(new StepFolder(step, Path.GetFullPath(folder)));
        return [.. found.OrderBy(f => f.Step)];
    }

    /// <summary>
    /// Deletes what a run killed in the middle of writing a checkpoint left under <paramref name="root"/>: the hidden
    /// temporary folders <c>.step-N.tmp-GUID</c> of <see cref="IO.AtomicFile.WriteFolder"/> (never a checkpoint
    /// itself, which is only ever renamed into place complete). Trainers call it when they start or resume; returns
    /// how many were removed.
    /// </summary>
    public static int RemoveTemporaries(string root)
    {
        if (!Directory.Exists(root)) return 0;
        int removed = 0;
        foreach (var folder in Directory.EnumerateDirectories(root, ".step-*"))
        {
            if (!IO.AtomicFile.IsTemporary(folder)) continue;
            try { Directory.Delete(folder, recursive: true); removed++; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // another process's, or not ours to delete: left as it is
        }
        return removed;
    }

    static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}

/// <summary>A checkpoint folder <c>step-N</c> and its step.</summary>
public sealed record StepFolder(int Step, string Folder);

/// <summary>One file of a checkpoint: its size in bytes and its SHA-256 (lower-case hex).</summary>
public sealed record CheckpointFileEntry(long Bytes, string Sha256);

/// <summary>What manifest.json holds.</summary>
public sealed record CheckpointManifestFile(string Format, SortedDictionary<string, CheckpointFileEntry> Files);
