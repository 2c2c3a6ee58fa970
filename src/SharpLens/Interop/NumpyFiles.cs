using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using SharpLens.IO;
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
        _ => throw new SharpLensArgumentException(nameof(dtype), $"NumPy has no dtype for {dtype}; convert the tensor to float32 first (bfloat16 included)."),
    };

    static ScalarType DtypeOf(string descr, string file) => descr switch
    {
        "<f4" => ScalarType.Float32, "<f8" => ScalarType.Float64, "<f2" => ScalarType.Float16,
        "<i8" => ScalarType.Int64, "<i4" => ScalarType.Int32, "<i2" => ScalarType.Int16,
        "|i1" => ScalarType.Int8, "|u1" => ScalarType.Byte, "|b1" => ScalarType.Bool,
        _ => throw new SharpLensFileException(file, "descr", $"{file}: dtype '{descr}' is not supported (little-endian numbers and bool only)."),
    };

    /// <summary>Writes one tensor as a .npy file (through a temp file, so a failure leaves nothing behind).</summary>
    public static void SaveNpy(string path, Tensor tensor) =>
        AtomicFile.Write(path, stream => WriteNpy(stream, tensor));

    /// <summary>Writes named tensors as an uncompressed .npz archive, one array per name.</summary>
    public static void SaveNpz(string path, IEnumerable<KeyValuePair<string, Tensor>> arrays) =>
        AtomicFile.Write(path, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (name, tensor) in arrays)
            {
                using var entry = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
                WriteNpy(entry, tensor);
            }
        });

    /// <summary>Writes one tensor in .npy format to <paramref name="stream"/> (for callers that stage several outputs, see <see cref="AtomicFile.Together"/>).</summary>
    public static void WriteNpy(Stream stream, Tensor tensor)
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
        using var stream = OpenRead(path);
        return ReadNpy(stream, path, stream.Length);
    }

    /// <summary>Reads every array of a .npz archive, by name.</summary>
    public static Dictionary<string, Tensor> LoadNpz(string path)
    {
        using var stream = OpenRead(path);
        ZipArchive zip;
        try { zip = new ZipArchive(stream, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { throw new SharpLensFileException(path, null, $"{path} is not a .npz file (not a readable zip archive: {e.Message})."); }
        using var _ = zip;
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var entry in zip.Entries.Where(e => e.Name.EndsWith(".npy", StringComparison.Ordinal)))
            {
                string name = $"{path}:{entry.FullName}";
                // The entry's declared size is checked before anything is inflated: a zip bomb is refused, not unpacked.
                SizeCheck.InMemory(entry.Length, name, "the entry's uncompressed size");
                using var s = entry.Open();
                using var buffered = new MemoryStream();
                CopyAtMost(s, buffered, entry.Length, name);
                buffered.Position = 0;
                result[entry.FullName[..^4]] = ReadNpy(buffered, name, buffered.Length);
            }
        }
        catch (InvalidDataException e)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new SharpLensFileException(path, null, $"{path}: the zip archive is damaged ({e.Message}).");
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        return result;
    }

    static FileStream OpenRead(string path)
    {
        if (!File.Exists(path)) throw new SharpLensFileException(path, null, Directory.Exists(path) ? $"{path} is a folder, not a .npy/.npz file." : $"{path}: no such file.");
        return File.OpenRead(path);
    }

    static void CopyAtMost(Stream from, Stream to, long limit, string name)
    {
        var buffer = new byte[1 << 16];
        long copied = 0;
        int read;
        while ((read = from.Read(buffer)) > 0)
        {
            copied += read;
            if (copied > limit) throw new SharpLensFileException(name, null, $"{name} inflates to more than the {limit:N0} bytes its zip entry declares; the archive is corrupt.");
            to.Write(buffer, 0, read);
        }
    }

    /// <summary>The largest .npy header SharpLens reads (NumPy writes a few hundred bytes).</summary>
    const int MaxHeaderBytes = 1 << 20;

    static Tensor ReadNpy(Stream stream, string file, long length)
    {
        var reader = new BinaryReader(stream);
        if (length < 10 || !reader.ReadBytes(6).SequenceEqual(Magic)) throw new SharpLensFileException(file, null, $"{file} is not a .npy file (it does not start with \\x93NUMPY).");
        byte major = reader.ReadByte();
        reader.ReadByte();
        if (major is < 1 or > 3) throw new SharpLensFileException(file, "version", $"{file}: .npy format version {major} is not one NumPy writes (1, 2 or 3).");
        long headerLength = major == 1 ? reader.ReadUInt16() : reader.ReadUInt32();
        if (headerLength > MaxHeaderBytes) throw new SharpLensFileException(file, "header_len", $"{file}: the .npy header claims {headerLength:N0} bytes (at most {MaxHeaderBytes:N0} are read); the file is corrupt.");
        SizeCheck.InFile(headerLength, length - stream.Position, file, "the header");
        string header = Encoding.ASCII.GetString(reader.ReadBytes((int)headerLength));
        var timeout = TimeSpan.FromSeconds(1);
        var descr = Regex.Match(header, @"'descr':\s*'([^']+)'", RegexOptions.None, timeout);
        var fortran = Regex.Match(header, @"'fortran_order':\s*(True|False)", RegexOptions.None, timeout);
        var shapeText = Regex.Match(header, @"'shape':\s*\(([^)]*)\)", RegexOptions.None, timeout);
        if (!descr.Success || !fortran.Success || !shapeText.Success) throw new SharpLensFileException(file, "header", $"{file}: unreadable .npy header {Shorten(header.Trim())}.");
        if (fortran.Groups[1].Value == "True") throw new SharpLensFileException(file, "fortran_order", $"{file} is in Fortran order; save it with numpy.ascontiguousarray first.");
        var parts = shapeText.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length > 64) throw new SharpLensFileException(file, "shape", $"{file}: the shape has {parts.Length} dimensions (at most 64).");
        var shape = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out shape[i]))
                throw new SharpLensFileException(file, "shape", $"{file}: shape dimension '{Shorten(parts[i])}' is not a non-negative integer.");
        var dtype = DtypeOf(descr.Groups[1].Value, file);

        long elementSize = dtype switch { ScalarType.Float64 or ScalarType.Int64 => 8, ScalarType.Float32 or ScalarType.Int32 => 4, ScalarType.Float16 or ScalarType.Int16 => 2, _ => 1 };
        long bytes = SizeCheck.Bytes(SizeCheck.Elements(shape, file, "shape"), elementSize, file, "shape");
        SizeCheck.InFile(bytes, length - stream.Position, file, $"the data of shape ({string.Join(", ", shape)})");
        if (bytes > Array.MaxLength) throw new SharpLensFileException(file, "shape", $"{file}: the array holds {SizeCheck.Describe(bytes)}, more than SharpLens reads from one .npy ({SizeCheck.Describe(Array.MaxLength)}).");
        byte[] data = reader.ReadBytes((int)bytes);
        if (data.Length != bytes) throw new SharpLensFileException(file, "data", $"{file} is truncated: {data.Length} of {bytes} data bytes.");
        var result = torch.empty(shape, dtype);
        result.bytes = data;
        return result;
    }

    static string Shorten(string text) => text.Length > 120 ? text[..120] + "…" : text;
}
