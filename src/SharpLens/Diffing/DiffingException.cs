namespace SharpLens.Diffing;

/// <summary>
/// Two models (or a model and a crosscoder) that cannot be diffed as asked: different tokenizers, different widths at
/// the hook, a hook one of them lacks. The message names both sides and what to do.
/// </summary>
public sealed class DiffingException(string message) : SharpLensException(message);

/// <summary>A crosscoder file or folder that cannot be read as one: names the file, the field or tensor, and what was expected.</summary>
public sealed class CrossCoderFileException(string filePath, string? key, string problem)
    : SharpLensFileException(filePath, key, $"{filePath}{(key is null ? "" : $" [{key}]")}: {problem}")
{
    public override string FilePath { get; } = filePath;
    public string? Key { get; } = key;
}
