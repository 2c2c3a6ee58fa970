namespace SharpLens.Corpora;

/// <summary>A downloaded corpus archive does not hash to the integrity its registry published; nothing was unpacked.</summary>
public sealed class CorpusIntegrityException(string path, string expected, string actual)
    : SharpLensFileException(path, null, $"'{path}' has integrity {actual} but {expected} was expected: the download is corrupt or was tampered with. Delete it and download again.")
{
    public string Path { get; } = path;
    public string Expected { get; } = expected;
    public string Actual { get; } = actual;
}

/// <summary>A corpus file is not in the format its reader expects; <see cref="Path"/> and <see cref="Line"/> say where.</summary>
public sealed class CorpusFormatException(string path, int? line, string problem)
    : SharpLensFileException(path, line is int n ? $"line {n}" : null, line is int l ? $"{path}, line {l}: {problem}" : $"{path}: {problem}")
{
    public string Path { get; } = path;
    public int? Line { get; } = line;
}
