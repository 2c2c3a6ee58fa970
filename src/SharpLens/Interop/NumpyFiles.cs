using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Interop;

/// <summary>
/// NumPy's <c>.npy</c> and <c>.npz</c> files, so other tools read SharpLens's numbers with <c>numpy.load</c>.
/// </summary>
/// <remarks>
/// .npy version 1.0, as NumPy's format documentation defines it:
/// <code>
/// "\x93NUMPY"  u8 major = 1  u8 minor = 0  u16 header_len (little-endian)
/// header: an ASCII Python dict literal {'descr': '&lt;f4', 'fortran_order': False, 'shape': (2, 3), }
///         padded with spaces and ended by '\n' so that 10 + header_len is a multiple of 64
/// data:   the elements in C order, little-endian
/// </code>
/// .npz is a zip archive of .npy files; numpy.load names each array by its file name without ".npy".
/// </remarks>
public static class NumpyFiles
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    static string Descr(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "<f4",
        ScalarType.Float64 => "<f8",
        ScalarType.Float16 => "<f2",
        ScalarType.Int64 => "<i8",
        ScalarType.Int32 => "<i4",
        ScalarType.Int16 => "<i2",
        ScalarType.Int8 => "|i1",
        ScalarType.Byte => "|u1",
        ScalarType.Bool => "|b1",
        _ => throw new NotSupportedException($"NumPy has no dtype for {dtype}; convert the tensor to float32 first (bfloat16 included)."),
    };

    static ScalarType DtypeOf(string descr, string file) => descr switch
    {
        "<f4" => ScalarType.Float32, "<f8" => ScalarType.Float64, "<f2" => ScalarType.Float16,
        "<i8" => ScalarType.Int64, "<i4" => ScalarType.Int32, "<i2" => ScalarType.Int16,
        "|i1" => ScalarType.Int8, "|u1" => ScalarType.Byte, "|b1" => ScalarType.Bool,
        _ => throw new InvalidDataException($"{file}: dtype '{descr}' is not supported (little-endian numbers and bool only)."),
    };

    /// <summary>Writes one tensor as a .npy file (through a temp file, so a failure leaves nothing behind).</summary>
    public static void SaveNpy(string path, Tensor tensor) =>
        WriteAtomically(path, stream => WriteNpy(stream, tensor));

    /// <summary>Writes named tensors as an uncompressed .npz archive, one array per name.</summary>
    public static void SaveNpz(string path, IEnumerable<KeyValuePair<string, Tensor>> arrays) =>
        WriteAtomically(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, tensor) in arrays)
            {
                using var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
                WriteNpy(entry, tensor);
            }
        });

    static void WriteNpy(Stream stream, Tensor tensor)
    {
        using var scope = torch.NewDisposeScope();
        var data = tensor.detach().cpu().contiguous();
        string shape = data.dim() switch
        {
            0 => "()",
            1 => $"({data.shape[0]},)",
            _ => "(" + string.Join(", ", data.shape) + ")",
        };
        string header = $"{{'descr': '{Descr(data.dtype)}', 'fortran_order': False, 'shape': {shape}, }}";
        int total = Magic.Length + 4 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";

        stream.Write(Magic);
        stream.Write([1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(data.bytes);
    }

    /// <summary>Reads a .npy file written by NumPy or by <see cref="SaveNpy"/>.</summary>
    public static Tensor LoadNpy(string path)
    {
        using var stream = File.OpenRead(path);
        return ReadNpy(stream, path);
    }

    /// <summary>Reads every array of a .npz archive, by name.</summary>
    public static Dictionary<string, Tensor> LoadNpz(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var result = new Dictionary<string, Tensor>();
        foreach (var entry in zip.Entries.Where(e => e.Name.EndsWith(".npy", StringComparison.Ordinal)))
        {
            using var s = entry.Open();
            using var buffered = new MemoryStream();
            s.CopyTo(buffered);
            buffered.Position = 0;
            result[entry.FullName[..^4]] = ReadNpy(buffered, $"{path}:{entry.FullName}");
        }
        return result;
    }

    static Tensor ReadNpy(Stream stream, string file)
    {
        var reader = new BinaryReader(stream);
        if (!reader.ReadBytes(6).SequenceEqual(Magic)) throw new InvalidDataException($"{file} is not a .npy file (bad magic).");
        byte major = reader.ReadByte();
        reader.ReadByte();
        int headerLength = major == 1 ? reader.ReadUInt16() : (int)reader.ReadUInt32();
        string header = Encoding.ASCII.GetString(reader.ReadBytes(headerLength));
        var descr = Regex.Match(header, @"'descr':\s*'([^']+)'");
        var fortran = Regex.Match(header, @"'fortran_order':\s*(True|False)");
        var shapeText = Regex.Match(header, @"'shape':\s*\(([^)]*)\)");
        if (!descr.Success || !fortran.Success || !shapeText.Success) throw new InvalidDataException($"{file}: unreadable .npy header {header.Trim()}.");
        if (fortran.Groups[1].Value == "True") throw new InvalidDataException($"{file} is in Fortran order; save it with numpy.ascontiguousarray first.");
        long[] shape = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        var dtype = DtypeOf(descr.Groups[1].Value, file);

        var result = torch.empty(shape, dtype);
        long bytes = result.NumberOfElements * result.ElementSize;
        byte[] data = reader.ReadBytes(checked((int)bytes));
        if (data.Length != bytes) throw new InvalidDataException($"{file} is truncated: {data.Length} of {bytes} data bytes.");
        result.bytes = data;
        return result;
    }

    static void WriteAtomically(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = full + "." + Environment.ProcessId + ".tmp";
        try
        {
            using (var stream = File.Create(temp)) write(stream);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
