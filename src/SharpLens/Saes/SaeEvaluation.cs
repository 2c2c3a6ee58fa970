using SharpLens.Models;
using SharpLens.Plots;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>How well an SAE reconstructs: L0 (mean active features per input), MSE (Σ over dimensions, mean over inputs),
/// explained variance 1 − Σ‖y − ŷ‖² / Σ‖y − ȳ‖², and each feature's firing rate.</summary>
public sealed record SaeReconstruction(double L0, double Mse, double ExplainedVariance, float[] FeatureDensity, long Inputs)
{
    /// <summary>Features that never fired on these inputs.</summary>
    public int DeadFeatures => FeatureDensity.Count(d => d == 0);
    /// <summary>Features that fired on more than <paramref name="threshold"/> of the inputs (default 10%).</summary>
    public int DenseFeatures(double threshold = 0.1) => FeatureDensity.Count(d => d > threshold);
}

/// <summary>What splicing the SAE in does to the model's next-token loss.</summary>
/// <param name="Recovered">(CE_zero_ablation − CE_spliced) / (CE_zero_ablation − CE_clean): 1 is a perfect SAE, 0 no better than zeroing the activation.</param>
public sealed record CeLossRecovered(double Clean, double Spliced, double ZeroAblation, double Recovered);

/// <summary>A histogram of log10 feature densities: bin edges (one more than counts) and counts; dead features are counted apart.</summary>
public sealed record DensityHistogram(double[] Edges, int[] Counts, int Dead);

/// <summary>Measures an SAE: reconstruction, CE loss recovered in a model, feature density.</summary>
public static class SaeEvaluation
{
    /// <summary>Reconstruction statistics over batches of inputs [batch, d_in] (with targets [batch, d_out] for transcoders).</summary>
    public static SaeReconstruction Reconstruction(Sae sae, IEnumerable<(Tensor Input, Tensor? Target)> batches)
    {
        using var _ = torch.no_grad();
        double l0Sum = 0, squaredError = 0;
        long n = 0;
        var fires = new double[sae.Config.DSae];
        // Variance around the mean, accumulated as Σy² and Σy so the batches can stream.
        Tensor? sum = null, sumSquares = null;
        bool errorTerm = sae.UseErrorTerm;
        sae.UseErrorTerm = false;
        try
        {
            foreach (var (input, target) in batches)
            {
                using var scope = torch.NewDisposeScope();
                var x = input.to(sae.W_enc.dtype).flatten(0, -2); // [n, d_in]
                var y = (target ?? input).to(sae.W_enc.dtype).flatten(0, -2); // [n, d_out]
                var features = sae.Encode(x); // [n, d_sae]
                var output = sae.Forward(x); // [n, d_out]
                var active = features.gt(0);
                l0Sum += active.sum().item<long>();
                squaredError += (y - output).pow(2).sum().to(ScalarType.Float64).item<double>();
                var counts = active.sum([0]).to(ScalarType.Float64).data<double>().ToArray();
                for (int i = 0; i < fires.Length; i++) fires[i] += counts[i];
                var ySum = y.to(ScalarType.Float64).sum([0]);
                var ySquares = y.to(ScalarType.Float64).pow(2).sum([0]);
                sum = sum is null ? ySum.DetachFromDisposeScope() : sum.add_(ySum);
                sumSquares = sumSquares is null ? ySquares.DetachFromDisposeScope() : sumSquares.add_(ySquares);
                n += x.shape[0];
            }
            if (n == 0) throw new ArgumentException("No inputs to evaluate on: the batches were empty.", nameof(batches));
            double total = (sumSquares! - sum!.pow(2) / n).sum().item<double>();
            return new SaeReconstruction(l0Sum / n, squaredError / n, 1 - squaredError / total,
                [.. fires.Select(f => (float)(f / n))], n);
        }
        finally
        {
            sae.UseErrorTerm = errorTerm;
            sum?.Dispose();
            sumSquares?.Dispose();
        }
    }

    public static SaeReconstruction Reconstruction(Sae sae, Tensor input, Tensor? target = null) =>
        Reconstruction(sae, [(input, target)]);

    /// <summary>
    /// CE loss recovered on <paramref name="tokens"/>: the model's next-token loss clean, with the SAE spliced in (no error
    /// term), and with the activation at the SAE's hook zeroed (for a transcoder: its output hook).
    /// </summary>
    /// <param name="lossMask">[batch, pos − 1]: which predictions count (1) and which do not (0); all count when null.
    /// For a model trained on some predictions only (the latent organism's answer), the others are not its task.</param>
    public static CeLossRecovered CeLossRecovered(HookedTransformer model, Sae sae, Tensor tokens, string? hookName = null, Tensor? lossMask = null)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        hookName ??= sae.Config.Metadata.HookName ?? throw new ArgumentException("The SAE's metadata names no hook; pass hookName.", nameof(hookName));
        string zeroed = sae.Config.IsTranscoder
            ? sae.Config.Metadata.HookNameOut ?? throw new ArgumentException("A transcoder needs Metadata.HookNameOut.", nameof(sae))
            : hookName;
        if (lossMask is not null && (lossMask.dim() != 2 || lossMask.shape[0] != tokens.shape[0] || lossMask.shape[1] != tokens.shape[1] - 1))
            throw new ArgumentException($"lossMask must be [batch, pos - 1] = [{tokens.shape[0]}, {tokens.shape[1] - 1}], one entry per prediction; got {ShapeText.Of(lossMask.shape)}.", nameof(lossMask));
        double Loss(Tensor logits) => lossMask is null
            ? HookedTransformer.Loss(logits, tokens).item<float>()
            : (HookedTransformer.LossPerToken(logits, tokens) * lossMask).sum().item<float>() / lossMask.sum().item<float>();
        double clean = Loss(model.Run(tokens));
        double ablated = Loss(model.RunWithHooks(tokens, [(zeroed, (x, _) => torch.zeros_like(x))]));
        var spliced = new HookedSaeTransformer(model);
        double withSae;
        using (spliced.AddSae(sae, hookName, useErrorTerm: false))
            withSae = Loss(spliced.Run(tokens));
        return new CeLossRecovered(clean, withSae, ablated, (ablated - withSae) / (ablated - clean));
    }

    /// <summary>Bins log10 of each live feature's density into <paramref name="bins"/> equal bins over [minLog10, 0].</summary>
    public static DensityHistogram Histogram(IReadOnlyList<float> density, int bins = 40, double minLog10 = -8)
    {
        var edges = Enumerable.Range(0, bins + 1).Select(i => minLog10 + (0 - minLog10) * i / bins).ToArray();
        var counts = new int[bins];
        int dead = 0;
        foreach (var d in density)
        {
            if (d <= 0) { dead++; continue; }
            int bin = (int)Math.Floor((Math.Log10(d) - minLog10) / (0 - minLog10) * bins);
            counts[Math.Clamp(bin, 0, bins - 1)]++;
        }
        return new DensityHistogram(edges, counts, dead);
    }

    /// <summary>Draws the histogram (feature count against log10 density) to a PNG or SVG file.</summary>
    public static void SaveHistogramPlot(DensityHistogram histogram, string path, string title = "Feature density")
    {
        var labels = Enumerable.Range(0, histogram.Counts.Length)
            .Select(i => ((histogram.Edges[i] + histogram.Edges[i + 1]) / 2).ToString("F1", System.Globalization.CultureInfo.InvariantCulture)).ToList();
        PlotFiles.LinePlot(path, [("features", [.. histogram.Counts.Select(c => (double)c)])],
            $"{title} ({histogram.Dead} dead)", "log10 firing rate (bin centre)", "features", labels);
    }
}
