namespace SharpLens.Techniques.Patching;

/// <summary>How far a sweep has got: cells measured out of all, and forward passes run.</summary>
public readonly record struct PatchingProgress(string Sweep, int CellsDone, int Cells, int ForwardPasses);

/// <summary>What a sweep measures and how many patched copies of the prompts share one forward pass.</summary>
public sealed record PatchingOptions
{
    public PatchingMetric Metric { get; init; } = PatchingMetric.LogitDifference;
    /// <summary>Rows (cells × pairs) per forward pass; null derives it from <see cref="MemoryBudgetBytes"/>.</summary>
    public int? MaxBatchRows { get; init; }
    /// <summary>Rough bound on the activation memory of one forward pass, used when <see cref="MaxBatchRows"/> is null.</summary>
    public long MemoryBudgetBytes { get; init; } = 512L << 20;
    public IProgress<PatchingProgress>? Progress { get; init; }
}
