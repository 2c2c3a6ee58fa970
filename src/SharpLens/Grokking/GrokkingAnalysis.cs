using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Grokking;

/// <summary>Everything the report shows: the final model's Fourier circuit and the progress measures over checkpoints.</summary>
/// <param name="EmbeddingNorms">Final embedding norm per frequency, entry 0 the constant (see <see cref="FourierAnalysis.EmbeddingNorms"/>).</param>
/// <param name="CosineCoefficients">α_k of the fit of the logits by Σ α_k cos(w_k(a + b − c)), one per key frequency.</param>
/// <param name="CosineExplained">Share of the (row-centred) logit variance that fit explains.</param>
/// <param name="GrokStep">First evaluated step with test loss below <see cref="ModularAdditionSettings.GrokThreshold"/>; null if never.</param>
public sealed record GrokkingAnalysis(
    ModularAdditionSettings Settings,
    TrainingRecord Training,
    ProgressPoint Final,
    double[] EmbeddingNorms,
    int[] KeyFrequencies,
    double KeyFrequencyNormShare,
    double[] CosineCoefficients,
    double CosineExplained,
    NeuronClusters Neurons,
    IReadOnlyList<ProgressPoint> Progress,
    IReadOnlyList<(int Step, double[] Norms)> NormsOverTime,
    int? GrokStep)
{
    /// <summary>
    /// Analyses the final model, then every checkpoint in <paramref name="checkpointFolder"/> with the final model's key
    /// frequencies (as the paper does), reporting each checkpoint to <paramref name="progress"/> (done, total).
    /// </summary>
    public static GrokkingAnalysis Run(ModularAdditionSettings settings, ModularAddition data, HookedTransformer model, TrainingRecord training,
        string checkpointFolder, IProgress<(int Done, int Total)>? progress = null)
    {
        int p = settings.P;
        var norms = FourierAnalysis.EmbeddingNorms(model, p);
        var keys = FourierAnalysis.KeyFrequencies(norms);
        double share = FourierAnalysis.NormShare(norms, keys);
        double[] coefficients;
        double explained;
        using (var logits = ProgressMeasures.AllLogits(model, data)) (coefficients, explained) = FourierAnalysis.CosineFit(logits, p, keys);
        var neurons = NeuronClusters.Measure(model, data);
        var final = ProgressMeasures.Measure(model, data, keys, training.Steps);

        var checkpoints = TrainingCheckpoint.List(checkpointFolder).Where(c => c.Step <= training.Steps).ToList();
        var points = new List<ProgressPoint>();
        var normsOverTime = new List<(int, double[])>();
        for (int i = 0; i < checkpoints.Count; i++)
        {
            using var saved = checkpoints[i].LoadModel();
            points.Add(ProgressMeasures.Measure(saved, data, keys, checkpoints[i].Step));
            normsOverTime.Add((checkpoints[i].Step, FourierAnalysis.EmbeddingNorms(saved, p)));
            progress?.Report((i + 1, checkpoints.Count));
        }
        int? grok = training.TestLosses.FirstOrDefault(t => t.Loss < ModularAdditionSettings.GrokThreshold) is { Step: > 0 } crossing ? crossing.Step : null;
        return new GrokkingAnalysis(settings, training, final, norms, keys, share, coefficients, explained, neurons, points, normsOverTime, grok);
    }
}
