namespace SharpLens.Training;

/// <summary>Where a training run stands after a step; handed to an <see cref="IProgress{T}"/>.</summary>
/// <param name="Step">Steps done so far (1-based).</param>
/// <param name="Loss">Loss of the batch this step trained on.</param>
public readonly record struct TrainingProgress(int Step, int TotalSteps, double Loss, double LearningRate, TimeSpan Elapsed);

/// <summary>A finished run: the loss of every step and how long it took.</summary>
public sealed record TrainingRecord(IReadOnlyList<double> Losses, TimeSpan Elapsed)
{
    public int Steps => Losses.Count;
    /// <summary>Mean loss of the last <paramref name="window"/> steps: a less noisy "final loss".</summary>
    public double FinalLoss(int window = 20) => Losses.TakeLast(Math.Max(1, window)).DefaultIfEmpty(double.NaN).Average();
}
