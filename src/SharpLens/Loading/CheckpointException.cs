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

    /// <summary>The problem, without the file and tensor.</summary>
    public string Problem { get; } = problem;

    /// <summary>A stored shape that disagrees with the one config.json implies (the loader then adds config.json's dimension fields).</summary>
    public bool ContradictsConfig { get; init; }
}
