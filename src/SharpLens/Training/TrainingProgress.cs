namespace SharpLens.Training;

/// <summary>Where a training run stands after a step; handed to an <see cref="IProgress{T}"/>.</summary>
/// <param name="Step">Steps done so far (1-based).</param>
/// <param name="Loss">Loss of the batch this step trained on.</param>
/// <param name="TestLoss">The latest held-out loss (see <see cref="TrainingRunOptions.TestLoss"/>), if one is measured.</param>
public readonly record struct TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, TimeSpan Elapsed,
    double? TestLoss = null);

/// <summary>A held-out loss measured after <paramref name="Step"/> steps.</summary>
public readonly record struct EvaluatedLoss(int Step, double Loss);

/// <summary>A finished run: the loss of every step and how long it took.</summary>
/// <param name="Losses">Training loss of every step from step 1, including steps done before a resume.</param>
/// <param name="Elapsed">Training time, including the time spent before a resume.</param>
public sealed record TrainingRecord(IReadOnlyList<double> Losses, TimeSpan Elapsed)
{
    public int Steps => Losses.Count;
    /// <summary>Held-out losses, every <see cref="TrainingRunOptions.EvaluateEvery"/> steps; empty when none was asked for.</summary>
    public IReadOnlyList<EvaluatedLoss> TestLosses { get; init; } = [];
    /// <summary>The checkpoint step this run continued from; null for a run from scratch.</summary>
    public int? ResumedFrom { get; init; }
    /// <summary>Steps at which checkpoints were written in this run.</summary>
    public IReadOnlyList<int> CheckpointsWritten { get; init; } = [];
    /// <summary>Checkpoints skipped on resuming because their files did not match their manifest, each with the reason.</summary>
    public IReadOnlyList<string> CheckpointsRefused { get; init; } = [];
    /// <summary>Mean loss of the last <paramref name="window"/> steps: a less noisy "final loss".</summary>
    public double FinalLoss(int window = 20) => Losses.TakeLast(Math.Max(1, window)).DefaultIfEmpty(double.NaN).Average();
}
