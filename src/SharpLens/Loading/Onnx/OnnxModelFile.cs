using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading.Onnx;

/// <summary>A node of the ONNX graph: which operator, reading which values, writing which.</summary>
public sealed record OnnxNode(string Name, string OpType, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>A constant tensor of the graph (a weight): its name, element type and shape, and where its bytes lie.</summary>
public sealed record OnnxInitializer(string Name, int DataType, long[] Dims, int Offset, int Length, bool IsRaw)
{
    public long ElementCount => Dims.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reads the weights and the wiring of an ONNX model: just enough of its protobuf encoding to list the graph's
/// nodes and initializers and turn float initializers into tensors. Nothing is executed.
/// </summary>
/// <remarks>
/// The fields read (ONNX's onnx.proto; every other field is skipped by its wire type):
/// <code>
/// ModelProto  7: graph (GraphProto)
/// GraphProto  1: node (NodeProto, repeated)   5: initializer (TensorProto, repeated)
/// NodeProto   1: input (string, repeated)     2: output (string, repeated)   3: name   4: op_type
/// TensorProto 1: dims (int64, packed or not)  2: data_type (1 = FLOAT)       4: float_data (packed float)
///             8: name                         9: raw_data (little-endian bytes)  14: data_location (1 = EXTERNAL)
/// </code>
/// Protobuf wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
/// </remarks>
public sealed class OnnxModelFile
{
    public const int FloatType = 1;
    readonly byte[] _bytes;
    readonly Dictionary<string, OnnxInitializer> _initializers = new(StringComparer.Ordinal);

    public string Source { get; }
    public IReadOnlyList<OnnxNode> Nodes { get; }
    public IReadOnlyDictionary<string, OnnxInitializer> Initializers => _initializers;

    OnnxModelFile(byte[] bytes, string source)
    {
        _bytes = bytes;
        Source = source;
        var nodes = new List<OnnxNode>();
        bool sawGraph = false;
        try
        {
            var model = new Reader(bytes, 0, bytes.Length);
            while (model.Next(out int field, out int wire))
            {
                if (field != 7 || wire != 2) { model.Skip(wire); continue; }
                sawGraph = true;
                var graph = model.Message();
                while (graph.Next(out int gField, out int gWire))
                {
                    if (gField == 1 && gWire == 2) nodes.Add(ReadNode(graph.Message()));
                    else if (gField == 5 && gWire == 2) AddInitializer(ReadTensor(graph.Message()));
                    else graph.Skip(gWire);
                }
            }
        }
        catch (IndexOutOfRangeException) { throw Bad(null, "the protobuf encoding ends in the middle of a field (or a length runs past its end); is the file truncated?"); }
        catch (OverflowException) { throw Bad(null, "a protobuf number does not fit its field; the file is corrupt."); }
        if (!sawGraph) throw Bad(null, "there is no graph (ModelProto field 7); is this an ONNX model file?");
        Nodes = nodes;
    }

    /// <summary>Reads a whole ONNX file.</summary>
    public static OnnxModelFile Open(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No ONNX model at '{path}'.", path);
        return new OnnxModelFile(File.ReadAllBytes(path), path);
    }

    /// <summary>Reads an ONNX model from a stream (e.g. a resource embedded in an assembly); <paramref name="source"/> names it in errors.</summary>
    public static OnnxModelFile Read(Stream stream, string source)
    {
        if (stream.Length > Array.MaxLength)
            throw new OnnxFormatException(source, null, $"the file is {stream.Length:N0} bytes; models over 2 GB keep their weights in external data files, which this reader does not read.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return new OnnxModelFile(bytes, source);
    }

    public bool Contains(string name) => _initializers.ContainsKey(name);

    /// <summary>A float32 initializer as a new tensor with the stored shape.</summary>
    public Tensor Read(string name)
    {
        if (!_initializers.TryGetValue(name, out var init)) throw Bad(name, "the graph has no initializer of this name.");
        if (init.DataType != FloatType) throw Bad(name, $"data_type is {init.DataType}, not 1 (FLOAT); only float32 weights are read.");
        if (init.Dims.Length > 64) throw Bad(name, $"has {init.Dims.Length} dims (at most 64).");
        if (init.Dims.Any(d => d < 0)) throw Bad(name, $"dims [{string.Join(", ", init.Dims)}] include a negative size.");
        long bytes = IO.SizeCheck.Bytes(IO.SizeCheck.Elements(init.Dims, Source, name), 4, Source, name);
        if (init.Length != bytes) throw Bad(name, $"holds {init.Length} bytes but dims [{string.Join(", ", init.Dims)}] need {bytes}.");
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX weights are little-endian; this reader needs a little-endian machine.");
        var values = new float[init.ElementCount];
        // float_data is packed little-endian fixed32, the same bytes as raw_data.
        MemoryMarshal.Cast<byte, float>(_bytes.AsSpan(init.Offset, init.Length)).CopyTo(values);
        return torch.tensor(values, init.Dims);
    }

    void AddInitializer(OnnxInitializer init)
    {
        if (!_initializers.TryAdd(init.Name, init)) throw Bad(init.Name, "two initializers have this name.");
    }

    static OnnxNode ReadNode(Reader r)
    {
        var inputs = new List<string>();
        var outputs = new List<string>();
        string name = "", op = "";
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2): inputs.Add(r.String()); break;
                case (2, 2): outputs.Add(r.String()); break;
                case (3, 2): name = r.String(); break;
                case (4, 2): op = r.String(); break;
                default: r.Skip(wire); break;
            }
        }
        return new OnnxNode(name, op, inputs, outputs);
    }

    OnnxInitializer ReadTensor(Reader r)
    {
        var dims = new List<long>();
        string name = "";
        int dataType = 0, offset = 0, length = 0;
        bool raw = false, external = false;
        while (r.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 0): dims.Add((long)r.Varint()); break;
                case (1, 2): { var packed = r.Message(); while (!packed.AtEnd) dims.Add((long)packed.Varint()); break; }
                case (2, 0): dataType = (int)r.Varint(); break;
                case (4, 2): (offset, length) = r.Bytes(); break;
                case (8, 2): name = r.String(); break;
                case (9, 2): (offset, length) = r.Bytes(); raw = true; break;
                case (14, 0): external = r.Varint() == 1; break;
                default: r.Skip(wire); break;
            }
        }
        if (external) throw Bad(name, "its data lies in an external file; only self-contained ONNX models are read.");
        return new OnnxInitializer(name, dataType, [.. dims], offset, length, raw);
    }

    OnnxFormatException Bad(string? tensor, string problem) => new(Source, tensor, problem);

    /// <summary>A cursor over one protobuf message inside the file's bytes.</summary>
    struct Reader(byte[] bytes, int start, int end)
    {
        int _pos = start;
        public readonly bool AtEnd => _pos >= end;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (_pos >= end) return false;
            ulong key = Varint();
            (field, wire) = ((int)(key >> 3), (int)(key & 7));
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (_pos >= end || shift > 63) throw new IndexOutOfRangeException();
                byte b = bytes[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
        }

        public (int Offset, int Length) Bytes()
        {
            ulong declared = Varint();
            if (declared > (ulong)(end - _pos)) throw new IndexOutOfRangeException(); // a length past the message's end
            int length = (int)declared, offset = _pos;
            _pos += length;
            return (offset, length);
        }

        public Reader Message() { var (o, n) = Bytes(); return new Reader(bytes, o, o + n); }
        public string String() { var (o, n) = Bytes(); return Encoding.UTF8.GetString(bytes, o, n); }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: if (end - _pos < 8) throw new IndexOutOfRangeException(); _pos += 8; break;
                case 2: Bytes(); break;
                case 5: if (end - _pos < 4) throw new IndexOutOfRangeException(); _pos += 4; break;
                default: throw new IndexOutOfRangeException(); // groups (3, 4) are not used by ONNX
            }
            if (_pos > end) throw new IndexOutOfRangeException();
        }
    }
}
