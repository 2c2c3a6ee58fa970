using System.IO.MemoryMappedFiles;
using static TorchSharp.torch;

namespace SharpLens.Training.Data;

/// <summary>
/// One split of a tokenized corpus, memory-mapped: the documents' token ids end to end, separators included, as
/// little-endian uint16 (nanoGPT's <c>train.bin</c> / <c>val.bin</c>), so any window is a read of the mapped file.
/// </summary>
public sealed class TokenShard : IDisposable
{
    readonly MemoryMappedFile _file;
    readonly MemoryMappedViewAccessor _view;

    TokenShard(string path, MemoryMappedFile file, MemoryMappedViewAccessor view, long length, long words) =>
        (Path, _file, _view, Length, Words) = (path, file, view, length, words);

    public string Path { get; }
    /// <summary>Tokens in the split.</summary>
    public long Length { get; }
    /// <summary>Whitespace-separated words of the split's text: per-word loss is total loss / this.</summary>
    public long Words { get; }

    public static TokenShard Open(string path, long words)
    {
        long bytes = new FileInfo(path).Length;
        if (bytes % 2 != 0) throw new TokenShardException(path, $"{path} has {bytes} bytes, not a whole number of uint16 tokens; delete its folder to tokenize again.");
        if (bytes == 0) throw new TokenShardException(path, $"{path} is empty.");
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var view = file.CreateViewAccessor(0, bytes, MemoryMappedFileAccess.Read);
        return new TokenShard(path, file, view, bytes / 2, words);
    }

    /// <summary>Tokens [offset, offset + count) as int64.</summary>
    public long[] Read(long offset, int count)
    {
        if (offset < 0 || count < 0 || offset + count > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"Tokens [{offset}, {offset + count}) are outside {Path} ({Length} tokens).");
        var raw = new ushort[count];
        _view.ReadArray(offset * 2, raw, 0, count);
        var ids = new long[count];
        for (int i = 0; i < count; i++) ids[i] = raw[i];
        return ids;
    }

    /// <summary>
    /// A random batch as nanoGPT draws it: [rows, length] windows starting at offsets uniform in [0, Length − length],
    /// drawn from <paramref name="generator"/>, so the same generator state gives the same batch.
    /// </summary>
    public Tensor RandomWindows(int rows, int length, Generator generator)
    {
        if (length > Length)
            throw new TokenShardException(Path, $"{Path} has {Length} tokens, fewer than one window of {length}; use a shorter --context or more text.");
        using var starts = randint(0, Length - length + 1, [rows], generator: generator, dtype: ScalarType.Int64); // [rows]
        var offsets = starts.data<long>().ToArray();
        var data = new long[rows * (long)length];
        for (int r = 0; r < rows; r++) Read(offsets[r], length).CopyTo(data, r * (long)length);
        return tensor(data, [rows, length]); // [rows, length]
    }

    /// <summary>Consecutive non-overlapping windows [n, length] from the start, at most <paramref name="maxWindows"/> (all when null).</summary>
    public Tensor Windows(int length, int? maxWindows = null)
    {
        long n = Length / length;
        if (n == 0) throw new TokenShardException(Path, $"{Path} has {Length} tokens, fewer than one window of {length}; use a shorter --context or more validation text.");
        if (maxWindows is int max) n = Math.Min(n, max);
        return tensor(Read(0, (int)(n * length)), [n, length]); // [n, length]
    }

    /// <summary>
    /// Windows of <paramref name="length"/> tokens starting every <paramref name="stride"/> tokens from the start (at most
    /// <paramref name="maxWindows"/>), in batches of up to <paramref name="batchSize"/>: [rows, length] each.
    /// </summary>
    public IEnumerable<Tensor> StridedWindows(int length, int stride, int? maxWindows, int batchSize)
    {
        if (length > Length)
            throw new TokenShardException(Path, $"{Path} has {Length} tokens, fewer than one window of {length}; use a shorter --context or more text.");
        long n = (Length - length) / stride + 1;
        if (maxWindows is int max) n = Math.Min(n, max);
        for (long first = 0; first < n; first += batchSize)
        {
            int rows = (int)Math.Min(batchSize, n - first);
            var data = new long[rows * (long)length];
            for (int r = 0; r < rows; r++) Read((first + r) * stride, length).CopyTo(data, r * (long)length);
            yield return tensor(data, [rows, length]); // [rows, length]
        }
    }

    public void Dispose()
    {
        _view.Dispose();
        _file.Dispose();
    }
}

/// <summary>A token shard is unusable; <see cref="Path"/> names it.</summary>
public sealed class TokenShardException(string path, string message) : SharpLensException(message)
{
    public string Path { get; } = path;
}
