using System.Text.Json;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// The weights of a Hugging Face model folder: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c> (<c>{"weight_map": {"tensor name": "shard file"}}</c>). Shards are
/// mapped when first read from and unmapped on dispose. A folder with neither but with <c>pytorch_model.bin</c>
/// (or its index) is read through <see cref="Pickle.PyTorchCheckpoint"/> behind the same methods.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    public const string SingleFile = "model.safetensors";
    public const string IndexFile = "model.safetensors.index.json";

    readonly Dictionary<string, string> _shardOf; // tensor name → shard path
    readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    readonly Pickle.PyTorchCheckpoint? _pytorch; // set when the folder holds pytorch_model.bin weights instead

    /// <summary>The file a reader would name in a message about this checkpoint as a whole.</summary>
    public string Source { get; }
    public IReadOnlyCollection<string> Names => _shardOf.Keys;

    /// <summary>The number of values all stored tensors hold together (from the headers; nothing is read).</summary>
    public long StoredElements => Names.Sum(n => Info(n).Shape.Aggregate(1L, (a, d) => a * d));

    SafeTensorsCheckpoint(string source, Dictionary<string, string> shardOf) => (Source, _shardOf) = (source, shardOf);

    SafeTensorsCheckpoint(Pickle.PyTorchCheckpoint pytorch) : this(pytorch.Source, pytorch.ShardOf.ToDictionary(StringComparer.Ordinal)) => _pytorch = pytorch;

    public static SafeTensorsCheckpoint Open(string folder)
    {
        folder = Path.GetFullPath(folder);
        string index = Path.Combine(folder, IndexFile), single = Path.Combine(folder, SingleFile);
        if (File.Exists(index)) return FromIndex(index);
        // Seam: a folder without safetensors but with PyTorch .bin weights is read through the restricted unpickler.
        if (!File.Exists(single) && Pickle.PyTorchCheckpoint.IsIn(folder)) return new SafeTensorsCheckpoint(Pickle.PyTorchCheckpoint.Open(folder));
        if (!File.Exists(single))
        {
            string found = Directory.Exists(folder) ? string.Join(", ", Directory.EnumerateFiles(folder).Select(Path.GetFileName).Order().Take(10)) : "(the folder does not exist)";
            throw new FileNotFoundException($"{folder} has neither {SingleFile} nor {IndexFile}; found: {found}. " +
                $"Download the safetensors weights, or the PyTorch {Pickle.PyTorchCheckpoint.SingleFile}.", single);
        }
        var file = SafeTensorsFile.Open(single);
        var checkpoint = new SafeTensorsCheckpoint(single, file.Names.ToDictionary(n => n, _ => single, StringComparer.Ordinal));
        checkpoint._open[single] = file;
        return checkpoint;
    }

    static SafeTensorsCheckpoint FromIndex(string index)
    {
        string folder = Path.GetDirectoryName(index)!;
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            byte[] bytes = File.ReadAllBytes(index);
            if (!System.Text.Unicode.Utf8.IsValid(bytes))
                throw new SafeTensorsFormatException(index, null, "the index is not valid UTF-8 JSON; the file is damaged.");
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new SafeTensorsFormatException(index, null, "the index must be a JSON object with a \"weight_map\" object of tensor name → shard file.");
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafeTensorsFormatException(index, entry.Name, "its weight_map entry must be a shard file name.");
                string shard = entry.Value.GetString()!;
                if (Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal))
                    throw new SafeTensorsFormatException(index, entry.Name, $"its shard '{shard}' must be a file name inside the checkpoint folder.");
                string shardPath = Path.Combine(folder, shard);
                if (!File.Exists(shardPath))
                    throw new SafeTensorsFormatException(index, entry.Name, $"its shard '{shard}' is missing from {folder}; download every shard the index lists.");
                shardOf[entry.Name] = shardPath;
            }
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(index, null, $"the index is not valid JSON ({e.Message}).");
        }
        return new SafeTensorsCheckpoint(index, shardOf);
    }

    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <summary>The file holding a tensor (its shard, or model.safetensors).</summary>
    public string FileOf(string name) => _shardOf.TryGetValue(name, out var shard) ? shard
        : throw new CheckpointException(Source, name, "the checkpoint has no such tensor.");

    /// <summary>The header entry of a tensor, checked against its shard (an index can point at the wrong one).</summary>
    public SafeTensorInfo Info(string name)
    {
        if (_pytorch is not null)
        {
            // A .bin tensor has no byte range in one data area: Begin/End only carry its size.
            var t = _pytorch.Info(name);
            return new SafeTensorInfo(name, t.DType, t.Shape, 0, t.ElementCount * Pickle.TorchPickleFile.ElementSize(t.DType));
        }
        var file = FileFor(name);
        return file.Contains(name) ? file.Info(name)
            : throw new SafeTensorsFormatException(file.FilePath, name, $"{IndexFile} places this tensor in this shard, but the shard does not have it.");
    }

    public Tensor Read(string name)
    {
        if (_pytorch is not null) return _pytorch.Read(name);
        Info(name);
        return FileFor(name).Read(name);
    }

    /// <inheritdoc cref="SafeTensorsFile.ReadInto(string, Tensor)"/>
    public void ReadInto(string name, Tensor destination)
    {
        if (_pytorch is not null) { _pytorch.ReadInto(name, destination); return; }
        Info(name);
        FileFor(name).ReadInto(name, destination);
    }

    /// <summary>
    /// Copies stored rows <paramref name="firstRow"/>… into <paramref name="destination"/>: <c>[rows, ...]</c>, or
    /// <c>[blocks, rows, ...]</c> for consecutive blocks of rows (see <see cref="SafeTensorsFile.ReadRowsInto(string, long, Tensor)"/>).
    /// </summary>
    public void ReadRowsInto(string name, long firstRow, Tensor destination)
    {
        var info = Info(name);
        bool blocks = destination.dim() == info.Shape.Length + 1;
        if (_pytorch is not null)
        {
            // A pickled tensor is read whole (it may be stored in any layout), then its rows are copied.
            using var _ = no_grad();
            using var whole = _pytorch.Read(name);
            using var rows = whole.narrow(0, firstRow, HuggingFaceTensorSource.RowsOf(destination, info.Shape.Length));
            using var shaped = rows.reshape(destination.shape);
            destination.copy_(shaped);
            return;
        }
        var file = FileFor(name);
        if (!blocks) { file.ReadRowsInto(name, firstRow, destination); return; }
        for (long b = 0; b < destination.shape[0]; b++)
            using (var block = destination[b]) file.ReadRowsInto(name, firstRow + b * destination.shape[1], block);
    }

    SafeTensorsFile FileFor(string name)
    {
        string path = FileOf(name);
        if (!_open.TryGetValue(path, out var file)) _open[path] = file = SafeTensorsFile.Open(path);
        return file;
    }

    public void Dispose()
    {
        _pytorch?.Dispose();
        foreach (var file in _open.Values) file.Dispose();
        _open.Clear();
    }
}
