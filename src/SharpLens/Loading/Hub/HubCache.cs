// The Hugging Face hub cache, laid out exactly as huggingface_hub lays it out so both share it:
//
//   <cache>/models--<org>--<name>/          one folder per repo ("/" in the repo id becomes "--")
//     refs/<revision>                       the commit hash a branch or tag pointed at when last resolved (no newline)
//     blobs/<etag>                          file contents, named by the hub's ETag: the sha256 of an LFS file,
//                                           the git blob sha1 of a small one
//     blobs/<etag>.incomplete               a download in progress (resumed with an HTTP Range request)
//     snapshots/<commit>/<path>             relative symlinks ../../blobs/<etag>: one tree per commit
//     .no_exist/<commit>/<path>             empty files recording that the commit has no such file (a 404)

using System.Text.RegularExpressions;

namespace SharpLens.Loading.Hub;

/// <summary>One repo's folder in the hub cache: its refs, blobs and snapshots.</summary>
public sealed partial class HubCache(string cacheFolder, string repoId)
{
    public string RepoId { get; } = repoId;
    public string RepoFolder { get; } = Path.Combine(Path.GetFullPath(cacheFolder), "models--" + repoId.Replace("/", "--"));

    [GeneratedRegex("^[0-9a-f]{40}$")]
    public static partial Regex CommitHash();

    /// <summary>The commit a revision names: itself when it is a hash, else what refs/&lt;revision&gt; holds (null if never resolved).</summary>
    public string? CommitFor(string revision)
    {
        if (CommitHash().IsMatch(revision)) return revision;
        string path = RefPath(revision);
        if (!File.Exists(path)) return null;
        // A ref holds one 40-hex commit hash; anything else (a path such as ../../.., a huge file) is refused, never followed.
        string commit = new FileInfo(path).Length <= 128 ? File.ReadAllText(path).Trim() : "";
        if (!CommitHash().IsMatch(commit))
            throw new SharpLensFileException(path, $"refs/{revision}", $"{path} should hold a 40-character commit hash but holds {(commit.Length == 0 ? "something else" : $"'{(commit.Length > 60 ? commit[..60] + "…" : commit)}'")}; " +
                "the Hugging Face cache is damaged: delete this ref (or the repo's folder) and download again.");
        return commit;
    }

    public string RefPath(string revision) => Path.Combine(RepoFolder, "refs", revision);
    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);
    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);
    public string SnapshotFile(string commit, string file) => Path.Combine(SnapshotFolder(commit), file);
    string NoExistPath(string commit, string file) => Path.Combine(RepoFolder, ".no_exist", commit, file);

    public bool Has(string commit, string file) => File.Exists(SnapshotFile(commit, file)); // follows the link to the blob
    public bool KnownMissing(string commit, string file) => File.Exists(NoExistPath(commit, file));

    public void MarkMissing(string commit, string file)
    {
        string path = NoExistPath(commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, []);
    }

    /// <summary>Records that a branch or tag points at a commit (hashes are not recorded, as in huggingface_hub).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        string path = RefPath(revision);
        if (File.Exists(path) && File.ReadAllText(path) == commit) return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        IO.AtomicFile.WriteAllText(path, commit);
    }

    /// <summary>Points snapshots/&lt;commit&gt;/&lt;file&gt; at its blob with a relative symlink (a copy where links are not allowed).</summary>
    public void Link(string commit, string file, string etag)
    {
        string pointer = SnapshotFile(commit, file), blob = BlobPath(etag);
        Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
        string target = Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob);
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget is not null) File.Delete(pointer);
        try { File.CreateSymbolicLink(pointer, target); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            File.Copy(blob, pointer, overwrite: true); // Windows without developer mode, as huggingface_hub falls back to
        }
    }
}
