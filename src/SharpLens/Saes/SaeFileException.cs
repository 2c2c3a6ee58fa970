namespace SharpLens.Saes;

/// <summary>An SAE file or folder that cannot be read as one: names the file, the key or tensor, and what was expected.</summary>
public sealed class SaeFileException(string filePath, string? key, string problem)
    : SharpLensFileException(filePath, key, $"{filePath}{(key is null ? "" : $" [{key}]")}: {problem}")
{
    public override string FilePath { get; } = filePath;
    public string? Key { get; } = key;
}
