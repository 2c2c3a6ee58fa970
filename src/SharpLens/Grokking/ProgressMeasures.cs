using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Grokking;

/// <summary>
/// The paper's progress measures at one checkpoint (Nanda et al. 2023, section 5.1), with the key frequencies of the
/// final model: restricted loss (logits kept only along the key frequencies, on all p² pairs), excluded loss (key
/// frequencies removed, on the training pairs), the Gini coefficient of the embedding's per-frequency norms, and the
/// total sum of squared weights.
/// </summary>
/// <param name="FullLoss">Loss of the unmodified logits on all p² pairs, to compare with <see cref="RestrictedLoss"/>.</param>
public sealed record ProgressPoint(int Step, double TrainLoss, double TestLoss, double FullLoss, double TrainAccuracy, double TestAccuracy,
    double RestrictedLoss, double ExcludedLoss, double Gini, double SumOfSquaredWeights);

public static class ProgressMeasures
{
    /// <summary>Logits for the p answers on every pair, row a·p + b: [p², p] in float64.</summary>
    public static Tensor AllLogits(HookedTransformer model, ModularAddition data)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        return ModularAddition.AnswerLogits(model, data.AllTokens, data.P).to(ScalarType.Float64).cpu().MoveToOuterDisposeScope(); // [p², p]
    }

    public static ProgressPoint Measure(HookedTransformer model, ModularAddition data, IReadOnlyList<int> keys, int step)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int p = data.P;
        var logits = AllLogits(model, data);                                           // [p², p]
        var train = logits.index_select(0, data.TrainIndices);
        var test = logits.index_select(0, data.TestIndices);
        var restricted = FourierAnalysis.RestrictedLogits(logits, p, keys);
        var excluded = FourierAnalysis.ExcludedLogits(logits, p, keys).index_select(0, data.TrainIndices);
        double squared = model.parameters().Sum(w => w.detach().pow(2).sum().ToDouble());
        return new ProgressPoint(step,
            ModularAddition.Loss(train, data.TrainAnswers).ToDouble(),
            ModularAddition.Loss(test, data.TestAnswers).ToDouble(),
            ModularAddition.Loss(logits, data.AllAnswers).ToDouble(),
            ModularAddition.Accuracy(train, data.TrainAnswers),
            ModularAddition.Accuracy(test, data.TestAnswers),
            ModularAddition.Loss(restricted, data.AllAnswers).ToDouble(),
            ModularAddition.Loss(excluded, data.TrainAnswers).ToDouble(),
            FourierAnalysis.FrequencyGini(FourierAnalysis.EmbeddingNorms(model, p)),
            squared);
    }
}
