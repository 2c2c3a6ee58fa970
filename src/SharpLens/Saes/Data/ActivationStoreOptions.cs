namespace SharpLens.Saes.Data;

/// <summary>Sizes and seed of an <see cref="ActivationStore"/>.</summary>
public sealed record ActivationStoreOptions
{
    /// <summary>Rows (token positions) per training batch.</summary>
    public int TrainBatchSize { get; init; } = 4096;
    /// <summary>Rows the shuffling buffer holds; the store refills it when it is half empty. At least 2 × <see cref="TrainBatchSize"/>.</summary>
    public long BufferRows { get; init; } = 4096 * 16;
    /// <summary>Seeds the order in which buffered rows are drawn: the same seed and data give the same batches.</summary>
    public long Seed { get; init; }

    /// <summary>SAELens's sizing: the buffer holds n_batches_in_buffer model calls of store_batch_size contexts of context_size tokens.</summary>
    public static ActivationStoreOptions Sized(int nBatchesInBuffer, int storeBatchSize, int contextSize, int trainBatchSize, long seed = 0) =>
        new() { BufferRows = (long)nBatchesInBuffer * storeBatchSize * contextSize, TrainBatchSize = trainBatchSize, Seed = seed };
}
