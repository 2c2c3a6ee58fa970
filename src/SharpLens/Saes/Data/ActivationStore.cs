using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// Training batches of activations [batch, d_in] (with paired outputs [batch, d_out] for transcoders) drawn at random
/// from a bounded buffer, as SAELens's ActivationsStore: chunks from the model (or from shards on disk) are poured into
/// a buffer of <see cref="ActivationStoreOptions.BufferRows"/> rows; each batch is a uniform sample without replacement
/// of what the buffer holds; when it is half empty it is topped up with new rows, which mix with the old.
/// </summary>
/// <remarks>
/// Memory: the buffer, plus the rest of at most one chunk (one model call) that did not fit. Rows are drawn in place:
/// the drawn rows' slots are filled from the buffer's tail, so nothing buffer-sized is ever copied.
/// </remarks>
public sealed class ActivationStore : IDisposable
{
    readonly IEnumerator<ActivationChunk> _source;
    readonly ActivationStoreOptions _options;
    readonly Generator _generator;
    Tensor? _input, _output; // [capacity, d_in], [capacity, d_out]
    ActivationChunk? _pending;
    long _pendingOffset;
    bool _exhausted;

    /// <summary>A store over chunks from any source; it consumes and disposes them.</summary>
    public ActivationStore(IEnumerable<ActivationChunk> chunks, ActivationStoreOptions options)
    {
        if (options.TrainBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), options.TrainBatchSize, "TrainBatchSize must be at least 1.");
        if (options.BufferRows < 2L * options.TrainBatchSize)
            throw new ArgumentOutOfRangeException(nameof(options), options.BufferRows, $"BufferRows ({options.BufferRows}) must be at least twice TrainBatchSize ({options.TrainBatchSize}) so that batches mix rows from several model calls.");
        (_source, _options) = (chunks.GetEnumerator(), options);
        _generator = new Generator((ulong)options.Seed);
    }

    /// <summary>A store that runs the model: SAE or transcoder activations of each token batch, BOS and excluded tokens dropped.</summary>
    public static ActivationStore FromModel(ActivationReader reader, IEnumerable<Tensor> tokenBatches, ActivationStoreOptions options,
        IReadOnlyCollection<int>? excludedTokenIds = null, bool dropFirstPosition = true) =>
        new(ActivationChunks.FromModel(reader, tokenBatches, excludedTokenIds, dropFirstPosition), options);

    /// <summary>
    /// A store over a <see cref="HookedTransformer"/>'s activations at <paramref name="hook"/> (paired with
    /// <paramref name="outputHook"/> for a transcoder) on <paramref name="contexts"/>, <paramref name="contextsPerCall"/>
    /// contexts per forward pass; position 0 and the tokenizer's BOS and padding tokens are left out.
    /// </summary>
    public static ActivationStore FromModel(HookedTransformer model, string hook, IEnumerable<long[]> contexts, ActivationStoreOptions options,
        int contextsPerCall = 8, string? outputHook = null)
    {
        var reader = outputHook is null ? ModelActivations.Reader(model, hook) : ModelActivations.Reader(model, hook, outputHook);
        var tokenizer = model.TokenizerIfSet ?? (model.Config.TokenizerName is not null ? model.Tokenizer : null);
        int?[] special = [model.Config.BosTokenId, tokenizer?.BosTokenId, tokenizer?.PadTokenId];
        return FromModel(reader, Contexts.Batches(contexts, contextsPerCall), options, [.. special.OfType<int>().Distinct()]);
    }

    /// <summary>A store that reads activations saved by <see cref="ActivationShards.Write"/> instead of running the model.</summary>
    public static ActivationStore FromShards(string folder, ActivationStoreOptions options) => new(ActivationShards.Read(folder), options);

    /// <summary>Rows the buffer can hold.</summary>
    public long Capacity => _options.BufferRows;
    /// <summary>Rows in the buffer now.</summary>
    public long BufferedRows { get; private set; }
    /// <summary>The most rows the buffer has held; never above <see cref="Capacity"/>.</summary>
    public long PeakBufferedRows { get; private set; }
    /// <summary>Rows handed out in batches so far.</summary>
    public long RowsServed { get; private set; }
    /// <summary>Rows of a chunk waiting outside the buffer because it was full (at most one chunk).</summary>
    public long PendingRows => _pending is null ? 0 : _pending.Rows - _pendingOffset;

    /// <summary>
    /// The next batch: Input [batch, d_in] (and Output [batch, d_out] when the source has them), the caller's to dispose;
    /// smaller at the very end; null once every row has been served.
    /// </summary>
    public ActivationChunk? NextBatch()
    {
        if (!_exhausted && BufferedRows < Math.Max(Capacity / 2, _options.TrainBatchSize)) Refill();
        if (BufferedRows == 0) return null;
        using var scope = torch.NewDisposeScope();
        long take = Math.Min(_options.TrainBatchSize, BufferedRows), count = BufferedRows, keep = count - take;
        var drawn = torch.randperm(count, generator: _generator).narrow(0, 0, take).to(_input!.device); // [take]
        var input = _input.index_select(0, drawn); // [take, d_in]
        var output = _output?.index_select(0, drawn); // [take, d_out]
        // Slots of drawn rows below the new end take the undrawn rows from the tail, in order.
        var drawnMask = torch.zeros(count, ScalarType.Bool, device: _input.device);
        drawnMask.index_put_(torch.tensor(true), drawn);
        var holes = drawn.masked_select(drawn < keep).sort().Values; // [h]
        var movers = torch.arange(keep, count, device: _input.device).masked_select(drawnMask.narrow(0, keep, take).logical_not()); // [h]
        using (torch.no_grad())
        {
            _input.index_copy_(0, holes, _input.index_select(0, movers));
            _output?.index_copy_(0, holes, _output.index_select(0, movers));
        }
        BufferedRows = keep;
        RowsServed += take;
        return new ActivationChunk(input.MoveToOuterDisposeScope(), output?.MoveToOuterDisposeScope());
    }

    /// <summary>Every remaining batch, until the source runs dry; dispose each.</summary>
    public IEnumerable<ActivationChunk> Batches()
    {
        while (NextBatch() is { } batch) yield return batch;
    }

    void Refill()
    {
        while (BufferedRows < Capacity)
        {
            if (_pending is null)
            {
                if (!_source.MoveNext()) { _exhausted = true; break; }
                (_pending, _pendingOffset) = (_source.Current, 0);
                Allocate(_pending);
            }
            long rows = Math.Min(_pending.Rows - _pendingOffset, Capacity - BufferedRows);
            using (var scope = torch.NewDisposeScope())
            using (torch.no_grad())
            {
                _input!.narrow(0, BufferedRows, rows).copy_(_pending.Input.narrow(0, _pendingOffset, rows));
                if (_output is not null) _output.narrow(0, BufferedRows, rows).copy_(_pending.Output!.narrow(0, _pendingOffset, rows));
            }
            BufferedRows += rows;
            _pendingOffset += rows;
            PeakBufferedRows = Math.Max(PeakBufferedRows, BufferedRows);
            if (_pendingOffset == _pending.Rows) { _pending.Dispose(); _pending = null; }
        }
    }

    void Allocate(ActivationChunk chunk)
    {
        if (_input is null)
        {
            _input = torch.empty([Capacity, chunk.Input.shape[1]], chunk.Input.dtype, chunk.Input.device).DetachFromDisposeScope();
            if (chunk.Output is not null)
                _output = torch.empty([Capacity, chunk.Output.shape[1]], chunk.Output.dtype, chunk.Output.device).DetachFromDisposeScope();
            return;
        }
        if (chunk.Input.shape[1] != _input.shape[1] || (chunk.Output is null) != (_output is null) || (_output is not null && chunk.Output!.shape[1] != _output.shape[1]))
            throw new ArgumentException($"A chunk of activations is {ShapeText.Of(chunk.Input.shape)}{(chunk.Output is null ? "" : $" → {ShapeText.Of(chunk.Output.shape)}")} " +
                $"but the store holds d_in = {_input.shape[1]}{(_output is null ? "" : $", d_out = {_output.shape[1]}")}: every chunk must come from the same hooks.", nameof(chunk));
    }

    public void Dispose()
    {
        _input?.Dispose();
        _output?.Dispose();
        _pending?.Dispose();
        _source.Dispose();
    }
}
