namespace SharpLens.Techniques;

/// <summary>How a logistic probe is fitted: full-batch Adam on standardised features, with an L2 penalty on the weights.</summary>
public sealed record ProbeSettings
{
    /// <summary>λ in loss = cross-entropy + λ ‖W‖² (on standardised features).</summary>
    public double L2 { get; init; } = 1e-3;
    public int Steps { get; init; } = 300;
    public double LearningRate { get; init; } = 0.05;
    /// <summary>Share of the examples held out for testing.</summary>
    public double TestFraction { get; init; } = 0.25;
    /// <summary>Seeds the train / test split.</summary>
    public long Seed { get; init; }

    public ProbeSettings Validated()
    {
        if (L2 < 0) throw new ArgumentException($"ProbeSettings.L2 must not be negative, got {L2}.", nameof(L2));
        if (Steps <= 0) throw new ArgumentException($"ProbeSettings.Steps must be positive, got {Steps}.", nameof(Steps));
        if (LearningRate <= 0) throw new ArgumentException($"ProbeSettings.LearningRate must be positive, got {LearningRate}.", nameof(LearningRate));
        if (TestFraction is <= 0 or >= 1) throw new ArgumentException($"ProbeSettings.TestFraction must be in (0, 1), got {TestFraction}.", nameof(TestFraction));
        return this;
    }
}
