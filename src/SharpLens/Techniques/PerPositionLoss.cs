using SharpLens.Models;
using SharpLens.Training;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>Next-token loss at each position, averaged over a batch: where in a sequence the model can predict.</summary>
public static class PerPositionLoss
{
    /// <summary>
    /// Mean cross-entropy per target position: entry t − 1 is the loss of predicting token t from tokens 0…t − 1,
    /// for t = 1 … pos − 1 (the first token has no prediction).
    /// </summary>
    public static double[] Compute(HookedTransformer model, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var perToken = Trainer.PerTokenLoss(model, tokens); // [batch, pos - 1]
        return [.. perToken.mean([0]).cpu().to(ScalarType.Float64).data<double>()];
    }

    /// <summary>Mean of the per-target losses for target positions first…last (inclusive, 1-based as in <see cref="Compute"/>).</summary>
    public static double MeanOver(double[] lossByTarget, int first, int last) =>
        lossByTarget[(first - 1)..last].Average();
}
