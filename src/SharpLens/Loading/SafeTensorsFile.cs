// The safetensors file format, spelled out in one place (this reader and SafeTensorsWriter follow it):
//
//   offset 0   u64, little-endian: N, the length of the header in bytes
//   offset 8   N bytes of UTF-8 JSON, one object:
//                { "__metadata__": { "format": "pt", ... string → string, optional },
//                  "<tensor name>": { "dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end] }, ... }
//              writers pad the header with trailing spaces so the data area starts 8-byte aligned
//   offset 8+N the data area: each tensor's elements, row-major (C order), little-endian, at bytes
//              [begin, end) counted from the start of the data area; end − begin = Π shape × element size;
//              tensors do not overlap. A shape of [] is a scalar (one element).
//   dtypes     F32 (4 bytes), F16 (2), BF16 (2), I64 (8), I32 (4); others exist in the wild (F64, U8, BOOL,
//              F8_*) and are rejected here with a message.
//
// A large checkpoint is split into shards model-00001-of-0000K.safetensors, with model.safetensors.index.json
// mapping each tensor to its shard: { "metadata": {...}, "weight_map": { "<tensor name>": "<shard file>" } }
// (see SafeTensorsCheckpoint).

using System.IO.MemoryMappedFiles;
using System.Text.Json;
using SharpLens.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>One tensor's entry in a safetensors header: where its bytes are in the data area.</summary>
public sealed record SafeTensorInfo(string Name, ScalarType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteCount => End - Begin;
}

/// <summary>
/// Reads a safetensors file through a memory map: the header is parsed and checked when the file is opened,
/// and a tensor's bytes are copied once, straight from the mapped file into the tensor's storage.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    /// <summary>Staged copies into non-contiguous or differently typed destinations go this many bytes at a time.</summary>
    internal const long StagingBytes = 1 << 20;

    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _data; // start of the data area in the mapped view
    readonly Dictionary<string, SafeTensorInfo> _tensors;
    bool _disposed;

    public string FilePath { get; }
    public long DataStart { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>Tensor names in the order of their bytes in the file.</summary>
    public IReadOnlyList<string> Names { get; }

    SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart,
        Dictionary<string, SafeTensorInfo> tensors, Dictionary<string, string> metadata)
    {
        (FilePath, _map, _view, DataStart, _tensors, Metadata) = (path, map, view, dataStart, tensors, metadata);
        Names = [.. tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.Name, StringComparer.Ordinal).Select(t => t.Name)];
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        _data = start + view.PointerOffset + dataStart;
    }

    /// <summary>Maps the file and checks its header; a malformed file throws <see cref="SafeTensorsFormatException"/>.</summary>
    public static SafeTensorsFile Open(string path)
    {
        TorchNative.EnsureLoaded();
        path = Path.GetFullPath(path);
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors files are little-endian; this reader needs a little-endian host.");
        var info = new FileInfo(path);
        // Hugging Face cache snapshots are symlinks into blobs/; FileInfo.Length would be the link's own length.
        if (info.LinkTarget is not null) info = info.ResolveLinkTarget(returnFinalTarget: true) as FileInfo ?? info;
        if (!info.Exists) throw new FileNotFoundException($"No safetensors file at '{path}'.", path);
        long fileLength = info.Length;
        if (fileLength < 8)
            throw new SafeTensorsFormatException(path, null, $"the file is {fileLength} bytes long, shorter than the 8-byte header length that starts every safetensors file; it is truncated or not a safetensors file.");

        var (headerLength, headerBytes) = ReadHeader(path, fileLength);
        long dataStart = 8 + headerLength;
        var (tensors, metadata) = ParseHeader(path, headerBytes, fileLength - dataStart);

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new SafeTensorsFile(path, map, view, dataStart, tensors, metadata);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    static (long Length, byte[] Bytes) ReadHeader(string path, long fileLength)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong length = BitConverter.ToUInt64(prefix);
        if (length > (ulong)(fileLength - 8))
            throw new SafeTensorsFormatException(path, null, $"the header length says {length} bytes but only {fileLength - 8} bytes follow it; the file is truncated or not a safetensors file.");
        if (length > 100_000_000)
            throw new SafeTensorsFormatException(path, null, $"the header length is {length} bytes, more than the 100 MB any real header needs; this is not a safetensors file.");
        var header = new byte[length]; // the header only, never the data
        stream.ReadExactly(header);
        return ((long)length, header);
    }

    static (Dictionary<string, SafeTensorInfo>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        // JsonDocument checks UTF-8 only when a string is read: names with invalid bytes would fail far from here.
        if (!System.Text.Unicode.Utf8.IsValid(header))
            throw new SafeTensorsFormatException(path, null, "the header is not valid UTF-8 JSON; the file is damaged or not a safetensors file.");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException(path, null, $"the header is not valid JSON ({e.Message}).");
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SafeTensorsFormatException(path, null, $"the header must be a JSON object, but it is a {doc.RootElement.ValueKind}.");

        var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            string name = property.Name;
            if (name == "__metadata__")
            {
                if (property.Value.ValueKind != JsonValueKind.Object)
                    throw new SafeTensorsFormatException(path, null, "__metadata__ must be an object of strings.");
                foreach (var m in property.Value.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()!
                        : throw new SafeTensorsFormatException(path, null, $"__metadata__ entry '{m.Name}' must be a string, but it is a {m.Value.ValueKind}.");
                continue;
            }
            if (tensors.ContainsKey(name)) throw new SafeTensorsFormatException(path, name, "the header lists this tensor twice.");
            tensors[name] = ParseEntry(path, name, property.Value, dataLength);
        }

        SafeTensorInfo? previous = null;
        foreach (var t in tensors.Values.Where(t => t.ByteCount > 0).OrderBy(t => t.Begin))
        {
            if (previous is not null && t.Begin < previous.End)
                throw new SafeTensorsFormatException(path, t.Name, $"its bytes [{t.Begin}, {t.End}) overlap those of tensor '{previous.Name}' [{previous.Begin}, {previous.End}).");
            previous = t;
        }
        return (tensors, metadata);
    }

    static SafeTensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        SafeTensorsFormatException Bad(string problem) => new(path, name, problem);
        if (entry.ValueKind != JsonValueKind.Object) throw Bad("its header entry must be an object with dtype, shape and data_offsets.");
        if (!entry.TryGetProperty("dtype", out var dtypeJson) || dtypeJson.ValueKind != JsonValueKind.String) throw Bad("its header entry has no \"dtype\" string.");
        if (!entry.TryGetProperty("shape", out var shapeJson) || shapeJson.ValueKind != JsonValueKind.Array) throw Bad("its header entry has no \"shape\" array.");
        if (!entry.TryGetProperty("data_offsets", out var offsetsJson) || offsetsJson.ValueKind != JsonValueKind.Array || offsetsJson.GetArrayLength() != 2)
            throw Bad("its header entry needs \"data_offsets\": [begin, end].");

        string dtypeName = dtypeJson.GetString()!;
        var dtype = ParseDType(dtypeName) ?? throw Bad($"dtype '{dtypeName}' is not supported; SharpLens reads F32, F16, BF16, I64 and I32. Convert the checkpoint (e.g. to F32 or BF16) first.");
        var shape = shapeJson.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out long v) && v >= 0 ? v
            : throw Bad($"shape {shapeJson.GetRawText()} must list non-negative integers.")).ToArray();
        var offsets = offsetsJson.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out long v) && v >= 0 ? v
            : throw Bad($"data_offsets {offsetsJson.GetRawText()} must be two non-negative integers.")).ToArray();
        long begin = offsets[0], end = offsets[1];
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] end before they begin.");
        if (end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] run past the end of the data area, which holds {dataLength} bytes; the file is truncated or its header is wrong.");

        long elements = 1;
        foreach (long d in shape) elements = d == 0 ? 0 : (elements > long.MaxValue / d ? throw Bad($"shape {shapeJson.GetRawText()} is too large.") : elements * d);
        long expected = elements * ElementSize(dtype);
        if (end - begin != expected)
            throw Bad($"shape {ShapeText.Of(shape)} of {dtypeName} needs {expected} bytes but data_offsets [{begin}, {end}] hold {end - begin}.");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    internal static ScalarType? ParseDType(string name) => name switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        _ => null,
    };

    internal static string? DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        _ => null,
    };

    internal static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Int64 => 8,
        _ => throw new SharpLensArgumentException(nameof(dtype), $"dtype {dtype} has no safetensors name here."),
    };

    public bool Contains(string name) => _tensors.ContainsKey(name);

    /// <summary>The header entry of a tensor; an unknown name lists the closest ones.</summary>
    public SafeTensorInfo Info(string name) => _tensors.TryGetValue(name, out var info) ? info
        : throw new KeyNotFoundException($"{FilePath} has no tensor '{name}'. Closest names: {string.Join(", ", Closest(name))}.");

    IEnumerable<string> Closest(string name) =>
        _tensors.Keys.OrderBy(k => Hooks.HookNotFoundException.EditDistance(name, k)).ThenBy(k => k, StringComparer.Ordinal).Take(3).Select(k => $"'{k}'");

    /// <summary>A new CPU tensor with the file's dtype and shape, filled by one copy from the mapped file.</summary>
    public Tensor Read(string name)
    {
        var info = Info(name);
        var tensor = torch.empty(info.Shape, info.DType);
        CopyBytes(info, info.Begin, tensor, info.ByteCount);
        return tensor;
    }

    /// <summary>
    /// Copies a tensor into <paramref name="destination"/>, which must have its shape but may have any dtype,
    /// device or strides (a transposed view of a parameter, say). A contiguous CPU destination of the file's
    /// dtype receives the bytes directly; any other goes through a small staging buffer, a few rows at a time.
    /// </summary>
    public void ReadInto(string name, Tensor destination) => ReadInto(name, destination, StagingBytes);

    internal void ReadInto(string name, Tensor destination, long stagingBytes)
    {
        var info = Info(name);
        if (!destination.shape.SequenceEqual(info.Shape))
            throw new ArgumentException($"{FilePath}: tensor '{name}' has shape {ShapeText.Of(info.Shape)} but the destination has {ShapeText.Of(destination.shape)}.", nameof(destination));
        if (info.Shape.Length == 0 || info.ElementCount == 0)
        {
            using var _ = torch.no_grad();
            using var whole = Read(name);
            destination.copy_(whole);
            return;
        }
        ReadRowsInto(name, 0, destination, stagingBytes);
    }

    /// <summary>
    /// Copies rows <paramref name="firstRow"/> … <paramref name="firstRow"/> + destination.shape[0] − 1 of a tensor (along
    /// its first dimension) into <paramref name="destination"/>, as <see cref="ReadInto(string, Tensor)"/> does the whole.
    /// </summary>
    public void ReadRowsInto(string name, long firstRow, Tensor destination) => ReadRowsInto(name, firstRow, destination, StagingBytes);

    internal void ReadRowsInto(string name, long firstRow, Tensor destination, long stagingBytes)
    {
        var info = Info(name);
        if (info.Shape.Length == 0 || destination.dim() != info.Shape.Length || !destination.shape[1..].SequenceEqual(info.Shape[1..])
            || firstRow < 0 || firstRow + destination.shape[0] > info.Shape[0])
            throw new ArgumentException($"{FilePath}: rows {firstRow}.. of tensor '{name}' {ShapeText.Of(info.Shape)} do not fit a destination of {ShapeText.Of(destination.shape)}.", nameof(destination));
        long totalRows = destination.shape[0];
        if (totalRows == 0 || info.ElementCount == 0) return;
        using var _ = torch.no_grad();
        long rowBytes = info.ByteCount / info.Shape[0], begin = info.Begin + firstRow * rowBytes;
        if (destination.dtype == info.DType && destination.device_type == DeviceType.CPU && destination.is_contiguous())
        {
            CopyBytes(info, begin, destination, totalRows * rowBytes);
            return;
        }
        long rowsPerChunk = Math.Clamp(stagingBytes / rowBytes, 1, totalRows);
        // One buffer for all chunks: allocating one per chunk leaves the allocator holding several freed ones.
        using var staging = torch.empty([rowsPerChunk, .. info.Shape[1..]], info.DType);
        for (long row = 0; row < totalRows; row += rowsPerChunk)
        {
            long rows = Math.Min(rowsPerChunk, totalRows - row);
            using var chunk = staging.narrow(0, 0, rows);
            CopyBytes(info, begin + row * rowBytes, chunk, rows * rowBytes);
            using var slice = destination.narrow(0, row, rows);
            slice.copy_(chunk);
        }
    }

    void CopyBytes(SafeTensorInfo info, long begin, Tensor contiguousCpu, long byteCount)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (byteCount == 0) return;
        // Tensor.bytes is a Span (int length), so copy in pieces below 2 GiB through flat, contiguous views.
        const long piece = 1L << 30;
        int elementSize = ElementSize(info.DType);
        using var flat = contiguousCpu.view(-1);
        for (long done = 0; done < byteCount; done += piece)
        {
            long bytes = Math.Min(piece, byteCount - done);
            using var part = flat.narrow(0, done / elementSize, bytes / elementSize);
            new ReadOnlySpan<byte>(_data + begin + done, checked((int)bytes)).CopyTo(part.bytes);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
