namespace SharpLens.IO;

/// <summary>
/// Every file and folder SharpLens writes goes through here: the content is written under a temporary name in the
/// same folder (so the final rename never crosses file systems) and renamed over the target only once it is complete.
/// A write that fails, or a process killed halfway, leaves the old target untouched (or no target) and no temporary
/// behind in the failing case. Temporaries are hidden siblings named <c>.NAME.tmp-GUID</c>.
/// </summary>
public static class AtomicFile
{
    /// <summary>Marks every temporary this class makes; <see cref="IsTemporary"/> recognises them.</summary>
    public const string TemporaryMarker = ".tmp-";

    /// <summary>A fresh temporary path beside <paramref name="path"/> (same folder; nothing is created).</summary>
    public static string TemporaryFor(string path, bool keepExtension = false)
    {
        path = Path.GetFullPath(path);
        string extension = keepExtension ? Path.GetExtension(path) : "";
        return Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}{TemporaryMarker}{Guid.NewGuid():N}{extension}");
    }

    /// <summary>Whether a file or folder name is one of this class's temporaries (a leftover of a killed run).</summary>
    public static bool IsTemporary(string name) => Path.GetFileName(name).Contains(TemporaryMarker, StringComparison.Ordinal);

    /// <summary>
    /// Writes <paramref name="path"/> by letting <paramref name="writeTemporary"/> write a temporary path (for APIs that
    /// take a path, e.g. a safetensors writer), then renaming it over the target.
    /// </summary>
    /// <param name="keepExtension">End the temporary's name with the target's extension, for writers that choose the format by it.</param>
    public static void WriteVia(string path, Action<string> writeTemporary, bool keepExtension = false)
    {
        path = Path.GetFullPath(path);
        CreateParent(path);
        string temporary = TemporaryFor(path, keepExtension);
        try
        {
            writeTemporary(temporary); // the writer's own errors pass through unchanged
            if (!File.Exists(temporary)) throw new SharpLensInternalException($"the writer for {path} did not write its temporary file {temporary}.");
            Guard(path, () => File.Move(temporary, path, overwrite: true));
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>Writes <paramref name="path"/> from a stream, atomically.</summary>
    public static void Write(string path, Action<Stream> write) => WriteVia(path, temporary =>
    {
        using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        write(stream);
        stream.Flush(flushToDisk: true);
    });

    public static void WriteAllText(string path, string text) => Write(path, stream =>
    {
        using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
        writer.Write(text);
    });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    /// <summary>
    /// Fills a fresh temporary folder with <paramref name="write"/>, then puts it in place of <paramref name="folder"/>.
    /// An existing folder is moved aside first and deleted only after the new one is in place (restored if the move
    /// fails), so at every moment the target is either the old folder complete or the new one complete.
    /// </summary>
    public static void WriteFolder(string folder, Action<string> write)
    {
        folder = Path.GetFullPath(folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        CreateParent(folder);
        string temporary = TemporaryFor(folder);
        Guard(folder, () => Directory.CreateDirectory(temporary));
        try
        {
            write(temporary);
            Guard(folder, () => ReplaceFolder(temporary, folder));
        }
        finally
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        }
    }

    /// <summary>Moves a complete folder <paramref name="source"/> to <paramref name="folder"/>, replacing any folder there.</summary>
    public static void ReplaceFolder(string source, string folder)
    {
        if (!Directory.Exists(folder)) { Directory.Move(source, folder); return; }
        string aside = TemporaryFor(folder);
        Directory.Move(folder, aside);
        try { Directory.Move(source, folder); }
        catch
        {
            Directory.Move(aside, folder); // put the old one back
            throw;
        }
        Directory.Delete(aside, recursive: true);
    }

    static void CreateParent(string path) => Guard(path, () => Directory.CreateDirectory(Path.GetDirectoryName(path)!));

    /// <summary>
    /// The file system refusing this class's own steps (creating the folder, the rename) is the user's to fix (no space, no
    /// permission, a file where a folder should be): say which output. A writer's own exceptions are not wrapped.
    /// </summary>
    static void Guard(string target, Action action)
    {
        try { action(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SharpLensFileException(target, null, $"cannot write {target}: {e.Message} Nothing was changed there; free space, fix permissions or choose another path.", e);
        }
    }

    /// <summary>
    /// Several outputs that stand or fall together (e.g. <c>sae encode</c>'s features and reconstruction): each is
    /// written to its temporary by <see cref="Group.Stage(string, Action{Stream})"/>; <see cref="Group.Commit"/> renames them all; disposing without
    /// committing deletes every temporary and leaves the targets as they were.
    /// </summary>
    public static Group Together() => new();

    public sealed class Group : IDisposable
    {
        readonly List<(string Temporary, string Target)> _staged = [];
        bool _committed;

        /// <summary>Writes <paramref name="path"/>'s temporary now; the target changes only at <see cref="Commit"/>.</summary>
        public void StageVia(string path, Action<string> writeTemporary)
        {
            path = Path.GetFullPath(path);
            CreateParent(path);
            string temporary = TemporaryFor(path);
            _staged.Add((temporary, path));
            writeTemporary(temporary);
            if (!File.Exists(temporary)) throw new SharpLensInternalException($"the writer for {path} did not write its temporary file {temporary}.");
        }

        public void Stage(string path, Action<Stream> write) => StageVia(path, temporary =>
        {
            using var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            write(stream);
            stream.Flush(flushToDisk: true);
        });

        public void Commit()
        {
            foreach (var (temporary, target) in _staged) Guard(target, () => File.Move(temporary, target, overwrite: true));
            _committed = true;
        }

        public void Dispose()
        {
            if (_committed) return;
            foreach (var (temporary, _) in _staged) if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
