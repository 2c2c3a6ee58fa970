using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Training;

/// <summary>
/// What a run does besides stepping the optimiser: its loss function, a held-out loss, checkpoints, resuming.
/// The defaults are a plain next-token run with none of these.
/// </summary>
public sealed record TrainingRunOptions
{
    /// <summary>The loss to minimise on a batch; null is <see cref="Trainer.NextTokenLoss"/> with the batch's mask.</summary>
    public Func<HookedTransformer, TrainingBatch, Tensor>? Loss { get; init; }

    /// <summary>
    /// A held-out loss, measured every <see cref="EvaluateEvery"/> steps and after the last, with gradients off and the
    /// model in eval mode; it is reported in <see cref="TrainingProgress.TestLoss"/> and <see cref="TrainingRecord.TestLosses"/>.
    /// </summary>
    public Func<HookedTransformer, double>? TestLoss { get; init; }
    public int EvaluateEvery { get; init; } = 100;

    /// <summary>Folder for checkpoints: <c>step-NNNNNN/</c> per checkpoint (see <see cref="TrainingCheckpoint"/>).</summary>
    public string? CheckpointFolder { get; init; }
    /// <summary>Steps (counted from 1) after which a checkpoint is written; the last step always gets one when a folder is set.</summary>
    public IReadOnlyCollection<int> CheckpointSteps { get; init; } = [];
    /// <summary>
    /// Continue from the latest checkpoint in <see cref="CheckpointFolder"/> at or before the run's last step: its
    /// weights, AdamW moments, batch generator and loss history. Without a checkpoint there, the run starts from scratch.
    /// </summary>
    public bool Resume { get; init; }

    /// <summary>Messages for the user while resuming: a checkpoint refused (with the reason) and the one used instead.</summary>
    public Action<string>? Log { get; init; }

    public TrainingRunOptions Validated()
    {
        if (EvaluateEvery <= 0) throw new ArgumentException($"TrainingRunOptions.EvaluateEvery must be positive, got {EvaluateEvery}.", nameof(EvaluateEvery));
        if (CheckpointSteps.Any(s => s <= 0))
            throw new ArgumentException($"TrainingRunOptions.CheckpointSteps must be steps counted from 1; got {CheckpointSteps.Min()}.", nameof(CheckpointSteps));
        if ((Resume || CheckpointSteps.Count > 0) && string.IsNullOrWhiteSpace(CheckpointFolder))
            throw new ArgumentException("TrainingRunOptions.CheckpointFolder is needed to write or resume checkpoints.", nameof(CheckpointFolder));
        return this;
    }
}
