namespace SharpLens.Attribution;

/// <summary>A transcoder file or folder is unusable: the message names the file, tensor or key and what to do.</summary>
public sealed class TranscoderFileException(string path, string? key, string problem)
    : SharpLensFileException(path, key, key is null ? $"{path}: {problem}" : $"{path}: '{key}' {problem}")
{
    public override string FilePath { get; } = path;
    public string? Key { get; } = key;
}

/// <summary>A transcoder set does not fit the model it is used with (d_model, layer count, hooks).</summary>
public sealed class TranscoderMismatchException(string message) : SharpLensException(message);

/// <summary>An argument of an attribution call is unusable; <see cref="Argument"/> names it.</summary>
public sealed class AttributionArgumentException(string argument, string message) : SharpLensException($"{argument}: {message}")
{
    public string Argument { get; } = argument;
    public override string? Field => Argument;
}

/// <summary>A graph.json that is not circuit-tracer's graph format; the message names the file and what is wrong.</summary>
public sealed class GraphFileException(string path, string problem) : SharpLensFileException(path, null, $"{path}: {problem}");
