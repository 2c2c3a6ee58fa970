namespace SharpLens.Loading;

/// <summary>
/// A safetensors file that breaks the format (see SafeTensorsFile.cs): the message names the file, the tensor
/// when one is at fault, and what is wrong.
/// </summary>
public sealed class SafeTensorsFormatException(string filePath, string? tensorName, string problem)
    : SharpLensFileException(filePath, tensorName, tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}")
{
    public override string FilePath { get; } = filePath;
    public string? TensorName { get; } = tensorName;
}
