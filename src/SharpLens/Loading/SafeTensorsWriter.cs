using System.Text.Json;
using SharpLens.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>What the header says about a tensor before its bytes are written.</summary>
public sealed record SafeTensorSpec(string Name, ScalarType DType, long[] Shape);

/// <summary>
/// Writes safetensors files (format at the top of SafeTensorsFile.cs) with an 8-byte aligned, space-padded
/// header and <c>__metadata__ {"format": "pt"}</c>, as PyTorch's writer does. The file appears only when it
/// is complete: it is written to a temporary file beside the target and renamed over it.
/// </summary>
public static class SafeTensorsWriter
{
    /// <summary>Writes these tensors, in this order.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var byName = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var specs = new List<SafeTensorSpec>();
        foreach (var (name, tensor) in tensors)
        {
            if (!byName.TryAdd(name, tensor)) throw new ArgumentException($"Tensor '{name}' is listed twice.", nameof(tensors));
            specs.Add(new SafeTensorSpec(name, tensor.dtype, tensor.shape));
        }
        Write(path, specs, name => byName[name], metadata);
    }

    /// <summary>
    /// Writes a header from <paramref name="specs"/>, then asks <paramref name="produce"/> for each tensor in turn,
    /// so a checkpoint can be written one tensor at a time (each may be a fresh tensor; it is disposed after use).
    /// </summary>
    public static void Write(string path, IReadOnlyList<SafeTensorSpec> specs, Func<string, Tensor> produce,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        TorchNative.EnsureLoaded();
        path = Path.GetFullPath(path);
        var header = Header(path, specs, metadata);
        IO.AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((ulong)header.Length));
            stream.Write(header);
            foreach (var spec in specs) WriteTensor(path, stream, spec, produce);
        });
    }

    static byte[] Header(string path, IReadOnlyList<SafeTensorSpec> specs, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            var meta = new Dictionary<string, string>(StringComparer.Ordinal) { ["format"] = "pt" };
            foreach (var (key, value) in metadata ?? new Dictionary<string, string>()) meta[key] = value;
            foreach (var (key, value) in meta) json.WriteString(key, value);
            json.WriteEndObject();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var spec in specs)
            {
                if (spec.Name == "__metadata__" || !seen.Add(spec.Name))
                    throw new ArgumentException($"{path}: tensor name '{spec.Name}' is reserved or repeated.", nameof(specs));
                string dtype = SafeTensorsFile.DTypeName(spec.DType)
                    ?? throw new ArgumentException($"{path}: tensor '{spec.Name}' has dtype {spec.DType}; safetensors files written here hold Float32, Float16, BFloat16, Int64 or Int32.", nameof(specs));
                long bytes = spec.Shape.Aggregate(1L, (a, b) => a * b) * SafeTensorsFile.ElementSize(spec.DType);
                json.WriteStartObject(spec.Name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long d in spec.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data area, at 8 + header length, starts on an 8-byte boundary.
        int length = (int)buffer.Length, padded = (length + 7) / 8 * 8;
        for (int i = length; i < padded; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    static void WriteTensor(string path, Stream stream, SafeTensorSpec spec, Func<string, Tensor> produce)
    {
        using var scope = torch.NewDisposeScope();
        var tensor = produce(spec.Name);
        if (tensor.dtype != spec.DType || !tensor.shape.SequenceEqual(spec.Shape))
            throw new ArgumentException($"{path}: tensor '{spec.Name}' was announced as {spec.DType} {ShapeText.Of(spec.Shape)} but is {tensor.dtype} {ShapeText.Of(tensor.shape)}.", nameof(produce));
        var flat = tensor.detach().cpu().contiguous().view(-1);
        // Tensor.bytes is a Span (int length): write pieces below 2 GiB.
        long perPiece = (1L << 30) / SafeTensorsFile.ElementSize(spec.DType);
        for (long start = 0; start < flat.shape[0]; start += perPiece)
            stream.Write(flat.narrow(0, start, Math.Min(perPiece, flat.shape[0] - start)).bytes);
    }
}
