namespace SharpLens.Saes.Dashboards;

/// <summary>What a <see cref="FeatureDashboard"/> shows and how it reads the data.</summary>
public sealed record FeatureDashboardOptions
{
    /// <summary>Features to show; when null, the <see cref="TopByDensity"/> densest features.</summary>
    public IReadOnlyList<int>? Features { get; init; }
    public int TopByDensity { get; init; } = 10;
    /// <summary>Top-activating contexts per feature.</summary>
    public int TopExamples { get; init; } = 10;
    /// <summary>Equal-width activation intervals between 0 and the feature's maximum, sampled for examples.</summary>
    public int Intervals { get; init; } = 5;
    public int SamplesPerInterval { get; init; } = 5;
    /// <summary>Tokens shown before and after the position an example is about.</summary>
    public int WindowBefore { get; init; } = 12;
    public int WindowAfter { get; init; } = 4;
    /// <summary>Tokens listed at each end of the logit effects.</summary>
    public int LogitTokens { get; init; } = 10;
    public int HistogramBins { get; init; } = 40;
    /// <summary>Leaves out position 0 of every context (the prepended BOS, where activations are atypical).</summary>
    public bool SkipFirstPosition { get; init; } = true;
    /// <summary>Tokens left out wherever they occur, as the activation store leaves them out (BOS used as a document separator, padding).</summary>
    public IReadOnlyList<int> ExcludedTokenIds { get; init; } = [];
    /// <summary>Contexts per model call.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Seeds the interval samples.</summary>
    public long Seed { get; init; }
}
