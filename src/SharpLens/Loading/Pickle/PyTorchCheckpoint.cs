using System.Text.Json;
using static TorchSharp.torch;

namespace SharpLens.Loading.Pickle;

/// <summary>
/// The PyTorch weights of a Hugging Face folder: one <c>pytorch_model.bin</c>, or shards listed by
/// <c>pytorch_model.bin.index.json</c>. Each shard is opened (its pickle parsed, restricted) when first read from.
/// </summary>
public sealed class PyTorchCheckpoint : IDisposable
{
    public const string SingleFile = "pytorch_model.bin";
    public const string IndexFile = "pytorch_model.bin.index.json";

    readonly Dictionary<string, TorchPickleFile> _open = new(StringComparer.Ordinal);

    public string Source { get; }
    /// <summary>Tensor name → the file holding it.</summary>
    public IReadOnlyDictionary<string, string> ShardOf { get; }

    PyTorchCheckpoint(string source, Dictionary<string, string> shardOf) => (Source, ShardOf) = (source, shardOf);

    /// <summary>Whether the folder holds PyTorch weights this class reads.</summary>
    public static bool IsIn(string folder) => File.Exists(Path.Combine(folder, IndexFile)) || File.Exists(Path.Combine(folder, SingleFile));

    public static PyTorchCheckpoint Open(string folder)
    {
        folder = Path.GetFullPath(folder);
        string index = Path.Combine(folder, IndexFile), single = Path.Combine(folder, SingleFile);
        if (File.Exists(index)) return new PyTorchCheckpoint(index, ReadIndex(index));
        var file = TorchPickleFile.Open(single);
        var checkpoint = new PyTorchCheckpoint(single, file.Names.ToDictionary(n => n, _ => single, StringComparer.Ordinal));
        checkpoint._open[single] = file;
        return checkpoint;
    }

    static Dictionary<string, string> ReadIndex(string index)
    {
        string folder = Path.GetDirectoryName(index)!;
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(index));
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new PickleFormatException(index, "the index must be a JSON object with a \"weight_map\" object of tensor name → shard file.");
            foreach (var entry in map.EnumerateObject())
            {
                string shard = entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString()!
                    : throw new PickleFormatException(index, $"tensor '{entry.Name}': its weight_map entry must be a shard file name.");
                if (Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal) || shard.Contains('/') || shard.Contains('\\'))
                    throw new PickleFormatException(index, $"tensor '{entry.Name}': its shard '{shard}' must be a file name inside the checkpoint folder.");
                string path = Path.Combine(folder, shard);
                if (!File.Exists(path))
                    throw new PickleFormatException(index, $"tensor '{entry.Name}': its shard '{shard}' is missing from {folder}; download every shard the index lists.");
                shardOf[entry.Name] = path;
            }
        }
        catch (JsonException e)
        {
            throw new PickleFormatException(index, $"the index is not valid JSON ({e.Message}).");
        }
        return shardOf;
    }

    public bool Contains(string name) => ShardOf.ContainsKey(name);

    /// <summary>The tensor's description, checked against its shard (an index can point at the wrong one).</summary>
    public PickledTensor Info(string name)
    {
        var file = FileFor(name);
        return file.Contains(name) ? file.Info(name)
            : throw new PickleFormatException(file.FilePath, $"tensor '{name}': {IndexFile} places this tensor in this shard, but the shard does not have it.");
    }

    public Tensor Read(string name)
    {
        Info(name);
        return FileFor(name).Read(name);
    }

    /// <summary>Copies a tensor into a destination of its shape (any dtype, device or strides).</summary>
    public void ReadInto(string name, Tensor destination)
    {
        var info = Info(name);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new ArgumentException($"{ShardOf[name]}: tensor '{name}' has shape {ShapeText.Of(info.Shape)} but the destination has {ShapeText.Of(destination.shape)}.", nameof(destination));
        using var tensor = FileFor(name).Read(name);
        using var _ = no_grad();
        destination.copy_(tensor);
    }

    TorchPickleFile FileFor(string name)
    {
        string path = ShardOf.TryGetValue(name, out var p) ? p : throw new CheckpointException(Source, name, "the checkpoint has no such tensor.");
        if (!_open.TryGetValue(path, out var file)) _open[path] = file = TorchPickleFile.Open(path);
        return file;
    }

    public void Dispose()
    {
        foreach (var file in _open.Values) file.Dispose();
        _open.Clear();
    }
}
