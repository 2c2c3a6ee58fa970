namespace SharpLens.Organisms;

/// <summary>
/// Where trained organisms are kept so a second run reuses them: <c>~/.cache/sharplens/organisms/NAME/</c>, with the
/// root overridable by the <c>SHARPLENS_CACHE</c> environment variable or an explicit folder.
/// </summary>
public static class OrganismCache
{
    public const string EnvironmentVariable = "SHARPLENS_CACHE";

    /// <summary>The cache root: <paramref name="overrideRoot"/>, else $SHARPLENS_CACHE, else ~/.cache/sharplens.</summary>
    public static string Root(string? overrideRoot = null)
    {
        if (!string.IsNullOrWhiteSpace(overrideRoot)) return Path.GetFullPath(overrideRoot);
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharplens");
    }

    public static string FolderFor(string name, string? overrideRoot = null) => Path.Combine(Root(overrideRoot), "organisms", name);

    /// <summary>
    /// Fills a fresh temporary folder with <paramref name="write"/>, then renames it to <paramref name="folder"/>, so a
    /// run killed halfway leaves no half-written organism where a later run would look for one.
    /// </summary>
    public static void WriteAtomically(string folder, Action<string> write)
    {
        folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
        string temporary = $"{folder}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(temporary);
        try
        {
            write(temporary);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            Directory.Move(temporary, folder);
        }
        catch
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
            throw;
        }
    }
}
