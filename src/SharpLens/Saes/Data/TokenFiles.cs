using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// Pre-tokenized data: NumPy <c>.npy</c> arrays of int32/int64 ids (1-D: one token stream; 2-D: one context per row),
/// and nanoGPT's <c>.bin</c> files (the raw little-endian uint16 ids of one token stream, no header).
/// </summary>
public static class TokenFiles
{
    /// <summary>Token ids [n] or [rows, pos] as int64, from a .npy or .bin file.</summary>
    public static Tensor Load(string path)
    {
        if (!File.Exists(path)) throw new DataSourceException(path, "no such token file.");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".npy" => LoadNpy(path),
            ".bin" => LoadNanoGptBin(path),
            var ext => throw new DataSourceException(path, $"token files are .npy (int32/int64) or nanoGPT .bin (uint16); '{ext}' is neither."),
        };
    }

    static Tensor LoadNpy(string path)
    {
        using var scope = torch.NewDisposeScope();
        var ids = NumpyFiles.LoadNpy(path);
        if (ids.dtype is not (ScalarType.Int32 or ScalarType.Int64 or ScalarType.Int16 or ScalarType.Byte))
            throw new DataSourceException(path, $"token ids must be integers; the array is {ids.dtype}.");
        if (ids.dim() is not (1 or 2))
            throw new DataSourceException(path, $"token ids must be 1-D (a stream) or 2-D (contexts); the array is {ShapeText.Of(ids.shape)}.");
        return ids.to(ScalarType.Int64).MoveToOuterDisposeScope();
    }

    static Tensor LoadNanoGptBin(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length % 2 != 0) throw new DataSourceException(path, $"a nanoGPT .bin holds uint16 ids, so its length must be even; it is {bytes.Length} bytes.");
        var ids = new long[bytes.Length / 2];
        for (int i = 0; i < ids.Length; i++) ids[i] = BitConverter.ToUInt16(bytes, 2 * i);
        return torch.tensor(ids); // [n]
    }
}
