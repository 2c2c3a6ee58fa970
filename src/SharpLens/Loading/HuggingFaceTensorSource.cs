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
    readonly Action<string, long, Tensor> _readRowsInto; // name, first row, destination [rows, ...] or [blocks, rows, ...]
    readonly Func<string, string> _fileOf;
    readonly Func<string, string> _stored; // a name as the checkpoint spells it, for messages
    readonly HashSet<string> _used = new(StringComparer.Ordinal);

    /// <summary>The checkpoint as a whole (a file or folder), for messages.</summary>
    public string Source { get; }
    public IReadOnlyCollection<string> Names { get; }

    HuggingFaceTensorSource(string source, IReadOnlyCollection<string> names, Func<string, bool> contains, Func<string, long[]> shape,
        Func<string, Tensor> read, Action<string, long, Tensor> readRowsInto, Func<string, string> fileOf, Func<string, string>? stored = null) =>
        (Source, Names, _contains, _shape, _read, _readRowsInto, _fileOf, _stored) = (source, names, contains, shape, read, readRowsInto, fileOf, stored ?? (n => n));

    /// <summary>Reads lazily from an open checkpoint (which must stay open while this is used).</summary>
    public static HuggingFaceTensorSource From(SafeTensorsCheckpoint checkpoint) =>
        new(checkpoint.Source, checkpoint.Names, checkpoint.Contains, n => checkpoint.Info(n).Shape, checkpoint.Read, checkpoint.ReadRowsInto, checkpoint.FileOf);

    /// <summary>Tensors already in memory; <paramref name="source"/> names where they came from.</summary>
    public static HuggingFaceTensorSource From(IReadOnlyDictionary<string, Tensor> tensors, string source) =>
        new(source, [.. tensors.Keys], tensors.ContainsKey, n => tensors[n].shape, n => tensors[n],
            (n, first, destination) => destination.copy_(tensors[n].narrow(0, first, RowsOf(destination, tensors[n].dim())).reshape(destination.shape)), _ => source);

    /// <summary>
    /// Tensors read on demand by <paramref name="read"/> (an ONNX file's initializers, say), whole; rows are cut from
    /// the tensor read. <paramref name="source"/> names where they come from.
    /// </summary>
    public static HuggingFaceTensorSource From(IReadOnlyCollection<string> names, Func<string, long[]> shape, Func<string, Tensor> read, string source)
    {
        var known = names.ToHashSet(StringComparer.Ordinal);
        return new(source, names, known.Contains, shape, read, (n, first, destination) =>
        {
            using var whole = read(n);
            using var rows = whole.narrow(0, first, RowsOf(destination, whole.dim()));
            using var shaped = rows.reshape(destination.shape);
            destination.copy_(shaped);
        }, _ => source);
    }

    /// <summary>The stored rows a destination takes: its first dimension, or its first two for blocks of rows.</summary>
    internal static long RowsOf(Tensor destination, long storedDims) =>
        destination.dim() == storedDims + 1 ? destination.shape[0] * destination.shape[1] : destination.shape[0];

    /// <summary>
    /// The same tensors under the names a weight map asks for: <paramref name="toView"/> turns a stored name into a
    /// view name (null leaves the tensor out, as a multimodal checkpoint's vision tower), <paramref name="toStored"/>
    /// turns it back. Messages name tensors as the checkpoint spells them.
    /// </summary>
    public HuggingFaceTensorSource Renamed(Func<string, string?> toView, Func<string, string> toStored)
    {
        var stored = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in Names)
            if (toView(name) is { } view) stored[view] = name;
        string Stored(string view) => stored.TryGetValue(view, out var name) ? name : toStored(view);
        return new(Source, stored.Keys, stored.ContainsKey, n => _shape(Stored(n)), n => _read(Stored(n)),
            (n, first, destination) => _readRowsInto(Stored(n), first, destination), n => _fileOf(Stored(n)), n => _stored(Stored(n)));
    }

    public bool Contains(string name) => _contains(name);

    /// <summary>The number of values all stored tensors hold together (from their shapes; nothing is read).</summary>
    public long StoredElements => Names.Sum(n => _shape(n).Aggregate(1L, (a, d) => a * d));

    /// <summary>The tensor as float32, after checking it exists and has <paramref name="shape"/>.</summary>
    public Tensor Read(string name, params long[] shape)
    {
        Check(name, shape);
        return _read(name).to(ScalarType.Float32);
    }

    /// <summary>
    /// Copies stored rows <paramref name="firstRow"/>… of the tensor (which must have <paramref name="shape"/>) into
    /// <paramref name="destination"/>, straight from the file: no full-size temporary. The destination has the stored
    /// trailing dimensions and any dtype or strides (a transposed view of a parameter, say): <c>[rows, ...]</c>, or
    /// <c>[blocks, rows, ...]</c> for consecutive blocks of rows (heads side by side along a projection's output).
    /// <paramref name="adjust"/>, when given, changes the values in float32 on their way (Gemma's 1 + w).
    /// </summary>
    public void ReadInto(string name, long[] shape, Tensor destination, long firstRow = 0, Action<Tensor>? adjust = null)
    {
        Check(name, shape);
        bool blocks = destination.dim() == shape.Length + 1;
        var rowShape = destination.shape[(blocks ? 2 : 1)..];
        long rows = RowsOf(destination, shape.Length);
        if (!rowShape.SequenceEqual(shape[1..]) || firstRow < 0 || firstRow + rows > shape[0])
            throw new ArgumentException($"{_stored(name)}: rows {firstRow}..{firstRow + rows} of {ShapeText.Of(shape)} do not fit a destination of {ShapeText.Of(destination.shape)}.", nameof(destination));
        using var _ = torch.no_grad();
        if (adjust is null) { _readRowsInto(name, firstRow, destination); return; }
        if (blocks) throw new ArgumentException("adjust takes a destination of [rows, ...].", nameof(adjust));
        AdjustedRows(name, firstRow, destination, adjust);
    }

    /// <summary>
    /// Copies blocks of consecutive columns of a 2-D tensor (which must have <paramref name="shape"/>) into their
    /// destinations, in one pass over its rows: each destination is <c>[rows, ...]</c>, its trailing dimensions holding
    /// the columns from its first column on, in order (GPT-2's c_attn: W_Q viewed as [d_model, head, d_head] takes columns
    /// 0 … d_model − 1, W_K the next d_model). The rows pass through one float32 buffer of about a million values, so no
    /// full-size temporary is made.
    /// </summary>
    public void ReadColumnsInto(string name, long[] shape, IReadOnlyList<(Tensor Destination, long FirstColumn)> blocks)
    {
        Check(name, shape);
        foreach (var (destination, firstColumn) in blocks)
        {
            long columns = destination.numel() / Math.Max(1, destination.shape[0]);
            if (shape.Length != 2 || destination.dim() < 2 || destination.shape[0] != shape[0] || firstColumn < 0 || firstColumn + columns > shape[1])
                throw new ArgumentException($"{_stored(name)}: columns {firstColumn}..{firstColumn + columns} of {ShapeText.Of(shape)} do not fit a destination of {ShapeText.Of(destination.shape)}.", nameof(blocks));
        }
        using var _ = torch.no_grad();
        long chunk = Math.Clamp((1L << 20) / Math.Max(1, shape[1]), 1, shape[0]);
        using var staging = torch.empty([chunk, shape[1]], ScalarType.Float32); // [rows, stored columns]
        for (long row = 0; row < shape[0]; row += chunk)
        {
            long n = Math.Min(chunk, shape[0] - row);
            using var values = staging.narrow(0, 0, n);
            _readRowsInto(name, row, values);
            foreach (var (destination, firstColumn) in blocks)
            {
                using var block = values.narrow(1, firstColumn, destination.numel() / destination.shape[0]).view([n, .. destination.shape[1..]]);
                using var part = destination.narrow(0, row, n);
                part.copy_(block);
            }
        }
    }

    /// <summary>The rows through a float32 buffer of about a million values, adjusted there, then copied into the destination.</summary>
    void AdjustedRows(string name, long firstRow, Tensor destination, Action<Tensor> adjust)
    {
        long rowElements = destination.shape[1..].Aggregate(1L, (a, d) => a * d);
        long chunk = Math.Clamp((1L << 20) / Math.Max(1, rowElements), 1, Math.Max(1, destination.shape[0]));
        for (long row = 0; row < destination.shape[0]; row += chunk)
        {
            long n = Math.Min(chunk, destination.shape[0] - row);
            using var values = torch.empty([n, .. destination.shape[1..]], ScalarType.Float32);
            _readRowsInto(name, firstRow + row, values);
            adjust(values);
            using var part = destination.narrow(0, row, n);
            part.copy_(values);
        }
    }

    void Check(string name, long[] shape)
    {
        if (!_contains(name))
            throw new CheckpointException(Source, _stored(name), "the checkpoint lacks this weight, which this architecture and config.json need; is the download complete, and is model_type right?");
        var stored = _shape(name);
        if (!stored.SequenceEqual(shape))
            throw new CheckpointException(_fileOf(name), _stored(name),
                $"shape {ShapeText.Of(stored)} does not match config.json, which implies {ShapeText.Of(shape)}.") { ContradictsConfig = true };
        _used.Add(name);
    }

    /// <summary>Marks a tensor as deliberately not read (a duplicate such as a tied lm_head).</summary>
    public void Skip(string name) => _used.Add(name);

    /// <summary>Throws for the first stored tensor no read used, unless <paramref name="ignorable"/> (buffers such as rotary inv_freq) says it may be left.</summary>
    public void CheckAllUsed(string family, Func<string, bool> ignorable)
    {
        foreach (var name in Names.Where(n => !_used.Contains(n) && !ignorable(n)).Order(StringComparer.Ordinal))
            throw new CheckpointException(_fileOf(name), _stored(name), $"a {family} model with this config.json has no such weight; is this checkpoint another architecture, or do the layer counts disagree?");
    }
}
