namespace SharpLens;

/// <summary>
/// The base of every error SharpLens raises on purpose. Two kinds sit under it (see <see cref="ErrorKind"/>):
/// <list type="bullet">
/// <item><b>Input</b> — bad input the user can fix: a malformed file (<see cref="SharpLensFileException"/>), an
/// unusable argument (<see cref="SharpLensArgumentException"/>), an unknown name, a missing download. The message
/// names the file, tensor, field, argument or hook, and what to do; the CLI prints it as one paragraph and exits 2.</item>
/// <item><b>Internal</b> — SharpLens itself went wrong (<see cref="SharpLensInternalException"/>): the CLI prints one
/// line and the path of a crash report, and exits 1.</item>
/// </list>
/// Anything that escapes without deriving from this class is treated as internal too (see <see cref="ErrorReport"/>).
/// </summary>
public class SharpLensException(string message, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Whether the user can fix this (input) or it is a SharpLens bug (internal).</summary>
    public virtual ErrorKind Kind => ErrorKind.Input;
    /// <summary>The file at fault, when one is.</summary>
    public virtual string? FilePath => null;
    /// <summary>The tensor, field, key or line inside <see cref="FilePath"/>, or the argument, when one is named.</summary>
    public virtual string? Field => null;
}

/// <summary>Who can fix an error: the user (bad input; CLI exit 2) or SharpLens (a bug; CLI exit 1 and a crash report).</summary>
public enum ErrorKind { Input, Internal }

/// <summary>
/// A file (or folder) that cannot be read as what it claims to be: truncated, malformed, inconsistent, too large for
/// its own size, unsafe. <see cref="FilePath"/> names it and <see cref="Field"/> the tensor / field / key at fault.
/// The format families (safetensors, pickle, ONNX, SAE folders, tokenizers, corpora, ...) derive from this.
/// </summary>
public class SharpLensFileException(string filePath, string? field, string message, Exception? inner = null)
    : SharpLensException(message, inner)
{
    public override string? FilePath { get; } = filePath;
    public override string? Field { get; } = field;
}

/// <summary>An argument (a method parameter, a CLI option, a setting) that cannot be used; <see cref="ParamName"/> names it.</summary>
public class SharpLensArgumentException(string? paramName, string message, Exception? inner = null)
    : SharpLensException(message, inner)
{
    /// <summary>The argument at fault, e.g. <c>tokens</c> or <c>--layer</c>.</summary>
    public string? ParamName { get; } = paramName;
    public override string? Field => ParamName;
}

/// <summary>An invariant SharpLens itself broke: a bug to report, never the user's fault. The CLI exits 1 with a crash report.</summary>
public sealed class SharpLensInternalException(string message, Exception? inner = null) : SharpLensException(message, inner)
{
    public override ErrorKind Kind => ErrorKind.Internal;
}
