using SharpLens.Models;
using SharpLens.Saes.Dashboards;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>How well the crosscoder reads held-out activations: explained variance per model, L0, and how often each latent fired.</summary>
public sealed record CrossCoderEvaluation(long Tokens, double[] ExplainedVariance, double L0, long[] FiringCounts);

/// <summary>
/// Everything the diffing readout of a crosscoder says: decoder norms and tags (<see cref="DecoderNorms"/>; 1 = fine-tune-only),
/// held-out evaluation, Latent Scaling for the most fine-tune-only latents and for a baseline of shared ones, and
/// dashboards of the exclusive latents (max-activating contexts read in the fine-tune, logit effects of their fine-tune decoder).
/// </summary>
public sealed record CrossCoderAnalysis(DecoderNorms Norms, CrossCoderEvaluation Evaluation, IReadOnlyList<LatentScale> FinetuneOnlyScaling,
    IReadOnlyList<LatentScale> SharedScaling, FeatureDashboard? Dashboards)
{
    /// <summary>
    /// Reads <paramref name="tokens"/> [contexts, pos] (held-out text) through the models and the crosscoder. Dashboards need
    /// <paramref name="toStrTokens"/>; logit effects use the fine-tune's unembedding when the hook writes the residual stream.
    /// </summary>
    public static CrossCoderAnalysis Run(CrossCoder crosscoder, IReadOnlyList<HookedTransformer> models, string hook, Tensor tokens,
        Func<IReadOnlyList<int>, IReadOnlyList<string>>? toStrTokens = null, int scalingLatents = 50, int dashboardLatents = 12,
        IReadOnlyCollection<int>? excludedTokenIds = null, int contextsPerCall = 16)
    {
        var reader = PairedActivations.Reader(models, hook);
        int m = crosscoder.NModels;
        excludedTokenIds ??= CrossCoderTraining.ExcludedTokens(models[0]);
        var evaluation = Evaluate(crosscoder, reader, tokens, excludedTokenIds, contextsPerCall);
        var norms = DecoderNorms.Of(crosscoder, firingCounts: evaluation.FiringCounts);
        var ftOnly = norms.MostFinetuneOnly(scalingLatents);
        var shared = Enumerable.Range(0, norms.Latents).Where(i => norms.Kinds[i] == LatentKind.Shared)
            .OrderByDescending(i => evaluation.FiringCounts[i]).Take(scalingLatents).ToArray();
        using var ftScaling = new LatentScaling(crosscoder, ftOnly);
        using var sharedScaling = new LatentScaling(crosscoder, shared);
        foreach (var batch in Batches(reader, tokens, excludedTokenIds, contextsPerCall, m))
            using (batch)
            {
                ftScaling.Add(batch);
                sharedScaling.Add(batch);
            }
        FeatureDashboard? dashboards = null;
        if (toStrTokens is not null)
        {
            var exclusive = norms.MostFinetuneOnly(dashboardLatents)
                .Concat(Enumerable.Range(0, norms.Latents).Where(i => norms.Kinds[i] == LatentKind.BaseOnly).OrderBy(i => norms.Relative[i]).Take(dashboardLatents / 3))
                .Distinct().ToArray();
            var ft = models[norms.FinetunedIndex];
            bool residual = hook.Contains("resid", StringComparison.Ordinal);
            using var scope = torch.NewDisposeScope();
            dashboards = FeatureDashboard.Build(reader, x => { using var _ = torch.no_grad(); return crosscoder.Encode(PairedActivations.AsCrosscoderInput(x, m)); },
                tokens, toStrTokens,
                new FeatureDashboardOptions { Features = exclusive, ExcludedTokenIds = [.. excludedTokenIds], BatchSize = contextsPerCall },
                residual ? crosscoder.W_dec[norms.FinetunedIndex].detach() : null, residual ? ft.unembed.W_U : null,
                title: $"Exclusive latents of the crosscoder at {hook} (fine-tune-only first; relative norm 1 = fine-tune-only)");
        }
        return new CrossCoderAnalysis(norms, evaluation, ftScaling.Results(), sharedScaling.Results(), dashboards);
    }

    /// <summary>Explained variance per model (1 − Σ(x − x̂)² / Σ(x − x̄)², in the activations' own space), L0 and firing counts on held-out tokens.</summary>
    public static CrossCoderEvaluation Evaluate(CrossCoder crosscoder, ActivationReader reader, Tensor tokens, IReadOnlyCollection<int> excludedTokenIds, int contextsPerCall = 16)
    {
        int m = crosscoder.NModels, d = crosscoder.DIn;
        var sum = torch.zeros(m, d, ScalarType.Float64);
        var sumSq = torch.zeros(m, ScalarType.Float64);
        var residual = torch.zeros(m, ScalarType.Float64);
        var fired = torch.zeros(crosscoder.DLatent, ScalarType.Int64);
        long n = 0, active = 0;
        foreach (var batch in Batches(reader, tokens, excludedTokenIds, contextsPerCall, m))
            using (batch)
            using (var scope = torch.NewDisposeScope())
            using (torch.no_grad())
            {
                var f = crosscoder.Encode(batch); // [b, F]
                var xHat = crosscoder.Decode(f); // [b, M, d]
                var x = batch.to(ScalarType.Float64);
                sum.add_(x.sum(dim: 0));
                sumSq.add_(x.pow(2).sum([0, 2]));
                residual.add_((x - xHat.to(ScalarType.Float64)).pow(2).sum([0, 2]));
                var on = f.gt(0);
                fired.add_(on.sum(dim: 0));
                active += on.sum().item<long>();
                n += batch.shape[0];
            }
        if (n == 0) throw new DiffingException("The held-out text gave no activations to evaluate the crosscoder on.");
        var total = sumSq - sum.pow(2).sum(1) / n; // Σ(x − x̄)² per model
        var ev = (1 - residual / total).data<double>().ToArray();
        var result = new CrossCoderEvaluation(n, ev, active / (double)n, fired.data<long>().ToArray());
        foreach (var t in new[] { sum, sumSq, residual, fired }) t.Dispose();
        return result;
    }

    /// <summary>Paired activations [b, M, d] of the kept positions of <paramref name="tokens"/>, one model call at a time; dispose each.</summary>
    static IEnumerable<Tensor> Batches(ActivationReader reader, Tensor tokens, IReadOnlyCollection<int> excludedTokenIds, int contextsPerCall, int m)
    {
        for (long start = 0; start < tokens.shape[0]; start += contextsPerCall)
        {
            Tensor batch;
            using (var scope = torch.NewDisposeScope())
            {
                var slice = tokens.narrow(0, start, Math.Min(contextsPerCall, tokens.shape[0] - start));
                using var chunk = ActivationChunks.FromModel(reader, [slice], excludedTokenIds).Single();
                batch = PairedActivations.AsCrosscoderInput(chunk.Input, m).clone().MoveToOuterDisposeScope(); // [b, M, d]
            }
            yield return batch;
        }
    }
}
