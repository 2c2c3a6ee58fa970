using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// The tensors of a Hugging Face checkpoint by their Hugging Face names, from safetensors files or from any
/// name → tensor dictionary (a PyTorch pickle reader, a test). Every read checks the name exists and the shape is
/// the one config.json implies, and is recorded, so a loader can tell which stored tensors it did not use.
/// </summary>
public sealed class HuggingFaceTensorSource
{
    readonly Func<string, bool> _contains;
    readonly Func<string, long[]> _shape;
    readonly Func<string, Tensor> _read;
    readonly Func<string, string> _fileOf;
    readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>The checkpoint as a whole (a file or folder), for messages.</summary>
    public string Source { get; }
    public IReadOnlyCollection<string> Names { get; }

    HuggingFaceTensorSource(string source, IReadOnlyCollection<string> names, Func<string, bool> contains, Func<string, long[]> shape,
        Func<string, Tensor> read, Func<string, string> fileOf) =>
        (Source, Names, _contains, _shape, _read, _fileOf) = (source, names, contains, shape, read, fileOf);

    /// <summary>Reads lazily from an open checkpoint (which must stay open while this is used).</summary>
    public static HuggingFaceTensorSource From(SafeTensorsCheckpoint checkpoint) =>
        new(checkpoint.Source, checkpoint.Names, checkpoint.Contains, n => checkpoint.Info(n).Shape, checkpoint.Read, checkpoint.FileOf);

    /// <summary>Tensors already in memory; <paramref name="source"/> names where they came from.</summary>
    public static HuggingFaceTensorSource From(IReadOnlyDictionary<string, Tensor> tensors, string source) =>
        new(source, [.. tensors.Keys], tensors.ContainsKey, n => tensors[n].shape, n => tensors[n], _ => source);

    public bool Contains(string name) => _contains(name);

    /// <summary>The number of values all stored tensors hold together (from their shapes; nothing is read).</summary>
    public long StoredElements => Names.Sum(n => _shape(n).Aggregate(1L, (a, d) => a * d));

    /// <summary>The tensor as float32, after checking it exists and has <paramref name="shape"/>.</summary>
    public Tensor Read(string name, params long[] shape)
    {
        if (!_contains(name))
            throw new CheckpointException(Source, name, "the checkpoint lacks this tensor, which this architecture and config.json need; is the download complete, and is model_type right?");
        var stored = _shape(name);
        if (!stored.SequenceEqual(shape))
            throw new CheckpointException(_fileOf(name), name,
                $"shape [{string.Join(", ", stored)}] does not match config.json, which implies [{string.Join(", ", shape)}].");
        _used.Add(name);
        return _read(name).to(ScalarType.Float32);
    }

    /// <summary>Marks a tensor as deliberately not read (a duplicate such as a tied lm_head).</summary>
    public void Skip(string name) => _used.Add(name);

    /// <summary>Throws for the first stored tensor no read used, unless <paramref name="ignorable"/> (buffers such as rotary inv_freq) says it may be left.</summary>
    public void CheckAllUsed(string family, Func<string, bool> ignorable)
    {
        foreach (var name in Names.Where(n => !_used.Contains(n) && !ignorable(n)).Order(StringComparer.Ordinal))
            throw new CheckpointException(_fileOf(name), name, $"a {family} model with this config.json has no such weight; is this checkpoint another architecture, or do the layer counts disagree?");
    }
}
