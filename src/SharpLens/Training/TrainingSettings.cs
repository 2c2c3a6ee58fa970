namespace SharpLens.Training;

/// <summary>How the learning rate moves after warmup.</summary>
public enum LearningRateSchedule
{
    /// <summary>Stays at the peak.</summary>
    Constant,
    /// <summary>Falls along a half cosine from the peak to <see cref="TrainingSettings.MinLearningRateFraction"/> of it.</summary>
    Cosine,
}

/// <summary>AdamW with linear warmup, then a constant or cosine learning rate.</summary>
public sealed record TrainingSettings
{
    public int Steps { get; init; } = 1000;
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 0.01;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.99;
    public int WarmupSteps { get; init; } = 50;
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Cosine;
    public double MinLearningRateFraction { get; init; } = 0.1;
    /// <summary>Clip the global gradient norm to this; null leaves gradients alone.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;
    /// <summary>
    /// Gradient accumulation: each step's batch is split into this many equal micro-batches along its first dimension,
    /// each run forward and backward on its own, their gradients summed (each loss divided by the count), then one
    /// optimiser step. The same step as the whole batch at once, in 1/n of the activation memory.
    /// </summary>
    public int MicroBatches { get; init; } = 1;
    /// <summary>Seeds the batches; the same seed gives the same run.</summary>
    public long Seed { get; init; }

    /// <summary>The learning rate at a 0-based step.</summary>
    public double LearningRateAt(int step)
    {
        if (step < WarmupSteps) return LearningRate * (step + 1) / WarmupSteps;
        if (Schedule == LearningRateSchedule.Constant) return LearningRate;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, Steps - WarmupSteps);
        double min = LearningRate * MinLearningRateFraction;
        return min + (LearningRate - min) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1, progress)));
    }

    public TrainingSettings Validated()
    {
        if (Steps <= 0) throw new ArgumentException($"TrainingSettings.Steps must be positive, got {Steps}.", nameof(Steps));
        if (BatchSize <= 0) throw new ArgumentException($"TrainingSettings.BatchSize must be positive, got {BatchSize}.", nameof(BatchSize));
        if (LearningRate <= 0) throw new ArgumentException($"TrainingSettings.LearningRate must be positive, got {LearningRate}.", nameof(LearningRate));
        if (MicroBatches <= 0) throw new ArgumentException($"TrainingSettings.MicroBatches must be positive, got {MicroBatches}.", nameof(MicroBatches));
        if (WarmupSteps < 0) throw new ArgumentException($"TrainingSettings.WarmupSteps must not be negative, got {WarmupSteps}.", nameof(WarmupSteps));
        return this;
    }
}
