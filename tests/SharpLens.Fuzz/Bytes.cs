using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpLens.Fuzz;

/// <summary>Small writers for the formats the corpus builds by hand: safetensors, zip, pickle opcodes, npy, protobuf.</summary>
static class Bytes
{
    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    public static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    public static byte[] Int32s(params int[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), values[i]);
        return bytes;
    }

    public static byte[] UInt64(ulong value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return bytes;
    }

    /// <summary>A safetensors file from a header (any JSON text) and a data area.</summary>
    public static byte[] SafeTensors(string header, byte[] data) => Concat(UInt64((ulong)Utf8(header).Length), Utf8(header), data);

    /// <summary>The header JSON and the data area of a safetensors file.</summary>
    public static (JsonObject Header, byte[] Data) SplitSafeTensors(byte[] file)
    {
        long length = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        var header = JsonNode.Parse(file.AsSpan(8, (int)length))!.AsObject();
        return (header, file[(8 + (int)length)..]);
    }

    /// <summary>A zip archive of the given entries (stored, as torch.save writes them), in order.</summary>
    public static byte[] Zip(IEnumerable<(string Name, byte[] Data)> entries, CompressionLevel level = CompressionLevel.NoCompression)
    {
        using var memory = new MemoryStream();
        using (var zip = new ZipArchive(memory, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, level).Open();
                s.Write(data);
            }
        return memory.ToArray();
    }

    public static List<(string Name, byte[] Data)> Unzip(byte[] archive)
    {
        using var zip = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read);
        var entries = new List<(string, byte[])>();
        foreach (var e in zip.Entries)
        {
            using var s = e.Open();
            using var m = new MemoryStream();
            s.CopyTo(m);
            entries.Add((e.FullName, m.ToArray()));
        }
        return entries;
    }

    /// <summary>A .npy (version 1.0) with any header dict text and data.</summary>
    public static byte[] Npy(string dict, byte[] data, byte major = 1)
    {
        string header = dict;
        int prefix = major == 1 ? 10 : 12;
        header += new string(' ', (64 - (prefix + header.Length + 1) % 64) % 64) + "\n";
        var lengthBytes = major == 1 ? BitConverter.GetBytes((ushort)header.Length) : BitConverter.GetBytes((uint)header.Length);
        return Concat([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, 0], lengthBytes, Encoding.ASCII.GetBytes(header), data);
    }

    // Protocol buffers: field key = (number << 3) | wire type; varints little-endian base 128.
    public static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do { byte b = (byte)(value & 0x7F); value >>= 7; bytes.Add(value != 0 ? (byte)(b | 0x80) : b); } while (value != 0);
        return [.. bytes];
    }

    public static byte[] PbVarint(int field, ulong value) => Concat(Varint((ulong)(field << 3)), Varint(value));
    public static byte[] PbBytes(int field, byte[] value) => Concat(Varint((ulong)((field << 3) | 2)), Varint((ulong)value.Length), value);
    public static byte[] PbString(int field, string value) => PbBytes(field, Utf8(value));

    /// <summary>An ONNX TensorProto: dims, data_type, name, raw_data.</summary>
    public static byte[] OnnxTensor(string name, long[] dims, int dataType, byte[] raw) =>
        Concat([.. dims.Select(d => PbVarint(1, (ulong)d)), PbVarint(2, (ulong)dataType), PbString(8, name), PbBytes(9, raw)]);

    /// <summary>An ONNX ModelProto with one graph of nodes and initializers.</summary>
    public static byte[] OnnxModel(IEnumerable<byte[]> initializers, IEnumerable<byte[]> nodes) =>
        Concat(PbVarint(1, 7), PbBytes(7, Concat([.. nodes.Select(n => PbBytes(1, n)), .. initializers.Select(i => PbBytes(5, i))])));

    public static byte[] OnnxNode(string op, string[] inputs, string[] outputs) =>
        Concat([.. inputs.Select(i => PbString(1, i)), .. outputs.Select(o => PbString(2, o)), PbString(4, op)]);
}

/// <summary>Pickle opcodes (protocol 2), enough to build state dicts and hostile streams.</summary>
sealed class PickleWriter
{
    readonly MemoryStream _s = new();
    public PickleWriter Op(byte op) { _s.WriteByte(op); return this; }
    public PickleWriter Raw(byte[] bytes) { _s.Write(bytes); return this; }
    public PickleWriter Proto() => Op(0x80).Op(2);
    public PickleWriter Global(string module, string name) => Op(0x63).Raw(Bytes.Utf8($"{module}\n{name}\n"));
    public PickleWriter Str(string text) { var b = Bytes.Utf8(text); Op(0x58); _s.Write(BitConverter.GetBytes((uint)b.Length)); _s.Write(b); return this; }
    public PickleWriter Int(long value)
    {
        if (value is >= 0 and < 256) return Op(0x4B).Op((byte)value);
        if (value is >= int.MinValue and <= int.MaxValue) { Op(0x4A); _s.Write(BitConverter.GetBytes((int)value)); return this; }
        Op(0x8A).Op(8); _s.Write(BitConverter.GetBytes(value)); return this;
    }
    public PickleWriter Mark() => Op(0x28);
    public PickleWriter Tuple() => Op(0x74);
    public PickleWriter Reduce() => Op(0x52);
    public PickleWriter Stop() => Op(0x2E);
    public byte[] ToArray() => _s.ToArray();

    /// <summary>
    /// A one-tensor state dict {name: _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())} whose
    /// storage is ('storage', torch.FloatStorage, key, 'cpu', numel).
    /// </summary>
    public static byte[] StateDict(string name, string key, long numel, long offset, long[] size, long[] stride, string storageType = "FloatStorage")
    {
        var w = new PickleWriter().Proto().Global("collections", "OrderedDict").Op(0x29).Reduce().Mark().Str(name)
            .Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(numel).Tuple().Op(0x51) // BINPERSID
            .Int(offset).Mark();
        foreach (long d in size) w.Int(d);
        w.Tuple().Mark();
        foreach (long d in stride) w.Int(d);
        w.Tuple().Op(0x89).Global("collections", "OrderedDict").Op(0x29).Reduce().Tuple().Reduce().Op(0x75).Stop(); // NEWFALSE, SETITEMS
        return w.ToArray();
    }
}
