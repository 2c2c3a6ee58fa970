namespace SharpLens.Loading.Onnx;

/// <summary>
/// An ONNX file that could not be read (see OnnxModelFile.cs for the fields read): the message names the file,
/// the initializer when one is at fault, and what is wrong.
/// </summary>
public sealed class OnnxFormatException(string filePath, string? tensorName, string problem)
    : SharpLensFileException(filePath, tensorName, tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}")
{
    public override string FilePath { get; } = filePath;
    public string? TensorName { get; } = tensorName;
}
