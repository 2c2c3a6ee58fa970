namespace SharpLens.Loading.Pickle;

/// <summary>
/// A pickle that asks for a Python global outside the short list a PyTorch state dict needs (see
/// <see cref="TorchPickleFile.AllowedGlobals"/>). Nothing from the file was run: the interpreter only builds data.
/// </summary>
public sealed class UnsafePickleException(string filePath, string global)
    : SharpLensFileException(filePath, global, $"{filePath}: the pickle asks for the Python global '{global}', which a PyTorch state dict never needs; " +
        $"SharpLens refuses the file and ran nothing from it. Allowed globals: {string.Join(", ", TorchPickleFile.AllowedGlobals)}. " +
        "If the file is yours and you trust it, re-save the weights as safetensors (safetensors.torch.save_file) in Python.")
{
    public override string FilePath { get; } = filePath;
    /// <summary>The refused global as module.name, e.g. <c>posix.system</c>.</summary>
    public string Global { get; } = global;
}

/// <summary>A PyTorch checkpoint or pickle stream that breaks the format: the message names the file, where, and what.</summary>
public sealed class PickleFormatException(string filePath, string problem) : SharpLensFileException(filePath, null, $"{filePath}: {problem}")
{
    public override string FilePath { get; } = filePath;
}
