namespace SharpLens.Loading;

/// <summary>
/// A well-formed checkpoint that does not fit the model family reading it: a missing or unexpected tensor, a
/// shape that disagrees with config.json, a config this family cannot express. Names the file and the tensor.
/// </summary>
public sealed class CheckpointException(string filePath, string? tensorName, string problem)
    : SharpLensFileException(filePath, tensorName, tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}")
{
    public override string FilePath { get; } = filePath;
    public string? TensorName { get; } = tensorName;
}
