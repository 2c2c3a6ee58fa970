// PyTorch's checkpoint format (torch.save since 1.6), spelled out in one place:
//
//   a zip archive, entries stored uncompressed, all under one top folder <p> (the file's stem, or "archive"):
//     <p>/data.pkl       a pickle (protocol 2) of the saved object; for a state dict:
//                          collections.OrderedDict() then SETITEMS of name → tensor, where each tensor is
//                          torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
//                                                         backward_hooks[, metadata])
//                          (an nn.Parameter wraps that in torch._utils._rebuild_parameter(tensor, requires_grad, hooks))
//                          and storage is a persistent id ("storage", torch.<Type>Storage, key, location, numel):
//                          the element type, the storage's entry name, the device it was saved from, its length
//     <p>/data/<key>     the raw bytes of storage <key>: numel elements of the storage type
//     <p>/byteorder      "little" or "big" (absent before torch 2.1: little)
//     <p>/version        the format version
//   Tensors are views: element (i, j, ...) sits at storage_offset + i·stride[0] + j·stride[1] + ...; several tensors
//   may share one storage (tied weights, slices of one buffer).
//
// A folder may instead hold shards pytorch_model-0000i-of-0000K.bin listed by pytorch_model.bin.index.json,
// {"weight_map": {"<tensor name>": "<shard file>"}}, the same index as safetensors (see PyTorchCheckpoint).
// The pre-1.6 format (a bare pickle stream, not a zip) is not read.

using System.IO.Compression;
using SharpLens.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading.Pickle;

/// <summary>One tensor of a PyTorch checkpoint: a strided view into one storage entry of the archive.</summary>
public sealed record PickledTensor(string Name, string StorageKey, ScalarType DType, long StorageElements, long StorageOffset, long[] Shape, long[] Stride)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads the state dict of a PyTorch <c>.bin</c>/<c>.pt</c> checkpoint through <see cref="PickleMachine"/> with only
/// the globals a state dict needs. Opening parses the pickle (tensor descriptions only); a tensor's bytes are read
/// from its storage entry when the tensor is asked for.
/// </summary>
public sealed class TorchPickleFile : IDisposable
{
    /// <summary>Every Python global a state dict may name; anything else is refused with <see cref="UnsafePickleException"/>.</summary>
    public static readonly IReadOnlyList<string> AllowedGlobals =
    [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter", "_codecs.encode",
        .. StorageTypes.Keys.Select(k => $"torch.{k}"),
    ];

    /// <summary>torch.&lt;Type&gt;Storage names the element type of a storage; these are the ones read.</summary>
    static IReadOnlyDictionary<string, ScalarType> StorageTypes => new Dictionary<string, ScalarType>
    {
        ["FloatStorage"] = ScalarType.Float32, ["HalfStorage"] = ScalarType.Float16, ["BFloat16Storage"] = ScalarType.BFloat16,
        ["DoubleStorage"] = ScalarType.Float64, ["LongStorage"] = ScalarType.Int64, ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16, ["CharStorage"] = ScalarType.Int8, ["ByteStorage"] = ScalarType.Byte, ["BoolStorage"] = ScalarType.Bool,
    };

    const long MaxPickleBytes = 256L << 20;

    readonly ZipArchive _zip;
    readonly string _prefix;
    readonly Dictionary<string, PickledTensor> _tensors;

    public string FilePath { get; }
    /// <summary>Tensor names in the order the state dict lists them.</summary>
    public IReadOnlyList<string> Names { get; }

    TorchPickleFile(string path, ZipArchive zip, string prefix, List<PickledTensor> tensors)
    {
        (FilePath, _zip, _prefix) = (path, zip, prefix);
        _tensors = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Names = [.. tensors.Select(t => t.Name)];
    }

    public static TorchPickleFile Open(string path)
    {
        TorchNative.EnsureLoaded();
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No PyTorch checkpoint at '{path}'.", path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            Span<byte> magic = stackalloc byte[4];
            if (stream.Length < 4 || stream.Read(magic) < 4 || magic[0] != 'P' || magic[1] != 'K')
                throw new PickleFormatException(path, "this is not a zip archive; it may be a pre-1.6 torch.save file (a bare pickle), which SharpLens does not read. " +
                    "Re-save it with a current torch.save, or as safetensors.");
            stream.Position = 0;
            var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
            try
            {
                var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                    ?? throw new PickleFormatException(path, "the zip archive has no <folder>/data.pkl entry; it is not a torch.save checkpoint.");
                string prefix = pkl.FullName[..^"data.pkl".Length];
                var order = zip.GetEntry(prefix + "byteorder");
                if (order is not null && order.Length > 64)
                    throw new PickleFormatException(path, $"its byteorder entry is {order.Length} bytes; it holds one word ('little' or 'big').");
                if (order is not null)
                {
                    using var reader = new StreamReader(order.Open());
                    string byteOrder = reader.ReadToEnd().Trim();
                    if (byteOrder != "little")
                        throw new PickleFormatException(path, $"the checkpoint's byteorder is '{byteOrder}'; only little-endian checkpoints are read. Re-save it on a little-endian machine.");
                }
                if (pkl.Length > MaxPickleBytes)
                    throw new PickleFormatException(path, $"{pkl.FullName} is {pkl.Length} bytes, more than the {MaxPickleBytes >> 20} MB a state dict's pickle needs.");
                var bytes = new byte[pkl.Length];
                using (var s = pkl.Open()) s.ReadExactly(bytes);
                var tensors = ReadStateDict(path, bytes, zip, prefix);
                return new TorchPickleFile(path, zip, prefix, tensors);
            }
            catch
            {
                zip.Dispose();
                throw;
            }
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw new PickleFormatException(path, $"the zip archive is damaged ({e.Message}); the download may be incomplete.");
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Runs the pickle with the allowed globals and checks every tensor against its storage entry.</summary>
    static List<PickledTensor> ReadStateDict(string path, byte[] pickle, ZipArchive zip, string prefix)
    {
        var machine = new PickleMachine(path, (module, name) => Global(path, module, name), id => Storage(path, id, zip, prefix));
        var root = machine.Load(pickle);
        if (root is not PickleDict dict)
            throw new PickleFormatException(path, "the checkpoint holds something other than a dict of tensors; SharpLens reads state dicts (model.state_dict()).");
        var tensors = new List<PickledTensor>();
        foreach (var (key, value) in dict)
        {
            if (key is not string name) throw new PickleFormatException(path, $"the state dict has a non-string key {key}.");
            if (value is not TensorView view) throw new PickleFormatException(path, $"state dict entry '{name}' is not a tensor.");
            tensors.Add(new PickledTensor(name, view.Storage.Key, view.Storage.DType, view.Storage.Elements, view.Offset, view.Shape, view.Stride));
        }
        return tensors;
    }

    sealed record StorageRef(string Key, ScalarType DType, long Elements);
    sealed record TensorView(StorageRef Storage, long Offset, long[] Shape, long[] Stride);

    static PickleGlobal Global(string path, string module, string name)
    {
        if (module == "torch" && StorageTypes.TryGetValue(name, out _)) return new PickleGlobal(module, name, null); // a type tag, never called
        return (module, name) switch
        {
            ("collections", "OrderedDict") => new(module, name, args => args.Items.Count == 0 ? new PickleDict()
                : throw new PickleFormatException(path, "collections.OrderedDict is called with arguments; a state dict's is built empty, then filled.")),
            ("torch._utils", "_rebuild_tensor_v2") => new(module, name, args => RebuildTensor(path, args)),
            ("torch._utils", "_rebuild_parameter") => new(module, name, args => args.Items.Count >= 1 && args.Items[0] is TensorView t ? t
                : throw new PickleFormatException(path, "torch._utils._rebuild_parameter must wrap a tensor.")),
            // Protocol 2 writes Python bytes as _codecs.encode(text, "latin1"); that is all this stand-in does.
            ("_codecs", "encode") => new(module, name, args => args.Items is [string text, string encoding] && encoding is "latin1" or "latin-1"
                ? System.Text.Encoding.Latin1.GetBytes(text)
                : throw new PickleFormatException(path, "_codecs.encode is only accepted as encode(text, 'latin1'), the way pickle writes bytes.")),
            _ => throw new UnsafePickleException(path, $"{module}.{name}"),
        };
    }

    static StorageRef Storage(string path, object? id, ZipArchive zip, string prefix)
    {
        if (id is not PickleTuple { Items: ["storage", PickleGlobal type, string key, string, long elements] })
            throw new PickleFormatException(path, "a persistent id is not ('storage', torch.<Type>Storage, key, location, numel), PyTorch's storage reference.");
        if (!StorageTypes.TryGetValue(type.Name, out var dtype)) throw new PickleFormatException(path, $"storage type '{type.FullName}' is not supported.");
        var entry = zip.GetEntry($"{prefix}data/{key}")
            ?? throw new PickleFormatException(path, $"storage '{key}' has no entry {prefix}data/{key} in the archive; the file is truncated or damaged.");
        if (elements < 0 || elements > long.MaxValue / ElementSize(dtype))
            throw new PickleFormatException(path, $"storage '{key}' claims {elements} elements, which no file can hold.");
        long bytes = elements * ElementSize(dtype);
        if (entry.Length != bytes)
            throw new PickleFormatException(path, $"storage '{key}' should hold {elements} × {ElementSize(dtype)} bytes = {bytes} but its entry has {entry.Length}.");
        // The declared size is checked against memory before any storage is reserved (a deflated entry can claim anything).
        IO.SizeCheck.InMemory(bytes, path, $"storage '{key}'");
        return new StorageRef(key, dtype, elements);
    }

    static TensorView RebuildTensor(string path, PickleTuple args)
    {
        if (args.Items is not [StorageRef storage, long offset, PickleTuple size, PickleTuple stride, ..] || args.Items.Count is < 6 or > 7)
            throw new PickleFormatException(path, "torch._utils._rebuild_tensor_v2 is called without (storage, offset, size, stride, requires_grad, hooks[, metadata]).");
        long[] Longs(PickleTuple t, string what) => [.. t.Items.Select(x => x is long v && v >= 0 ? v
            : throw new PickleFormatException(path, $"a tensor's {what} must be non-negative integers."))];
        long[] shape = Longs(size, "size"), strides = Longs(stride, "stride");
        if (shape.Length != strides.Length) throw new PickleFormatException(path, $"a tensor has size {ShapeText.Of(shape)} but stride {ShapeText.Of(strides)}.");
        // The last element the view touches must lie inside the storage; the sum is exact (Int128), so a huge stride cannot wrap it back inside.
        Int128 last = shape.Any(d => d == 0) ? (Int128)offset - 1 : offset + shape.Zip(strides, (d, s) => (Int128)(d - 1) * s).Aggregate((Int128)0, (a, b) => a + b);
        if (shape.Length > 64) throw new PickleFormatException(path, $"a tensor has {shape.Length} dimensions (at most 64).");
        if (offset < 0 || last >= storage.Elements)
            throw new PickleFormatException(path, $"a tensor view (offset {offset}, size {ShapeText.Of(shape)}, stride {ShapeText.Of(strides)}) reaches past the {storage.Elements} elements of storage '{storage.Key}'.");
        return new TensorView(storage, offset, shape, strides);
    }

    internal static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        _ => 1,
    };

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public PickledTensor Info(string name) => _tensors.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"{FilePath} has no tensor '{name}'. Closest names: " +
            string.Join(", ", _tensors.Keys.OrderBy(k => Hooks.HookNotFoundException.EditDistance(name, k)).Take(3).Select(k => $"'{k}'")) + ".");

    /// <summary>A new contiguous CPU tensor with the stored dtype and shape (the view's elements, copied out of its storage).</summary>
    public Tensor Read(string name)
    {
        var info = Info(name);
        using var scope = torch.NewDisposeScope();
        var storage = ReadStorage(info); // [storage elements]
        var view = storage.as_strided(info.Shape, info.Stride, info.StorageOffset);
        return torch.empty(info.Shape, info.DType).copy_(view).MoveToOuterDisposeScope();
    }

    Tensor ReadStorage(PickledTensor info)
    {
        var entry = _zip.GetEntry($"{_prefix}data/{info.StorageKey}")!;
        var storage = torch.empty(info.StorageElements, info.DType);
        using var stream = entry.Open();
        // Tensor.bytes is a Span (int length): fill the storage in pieces below 2 GiB.
        const long piece = 1L << 30;
        int size = ElementSize(info.DType);
        long total = info.StorageElements * size;
        for (long done = 0; done < total; done += piece)
        {
            long bytes = Math.Min(piece, total - done);
            using var part = storage.narrow(0, done / size, bytes / size);
            try { stream.ReadExactly(part.bytes); }
            catch (EndOfStreamException) { throw new PickleFormatException(FilePath, $"storage '{info.StorageKey}' ends early; the file is truncated."); }
        }
        return storage;
    }

    public void Dispose() => _zip.Dispose();
}
