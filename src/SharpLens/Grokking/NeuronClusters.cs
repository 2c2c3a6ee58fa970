using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Grokking;

/// <summary>
/// MLP neurons grouped by the frequency they compute (Nanda et al. 2023, section 4.2). Each neuron's activation at the
/// <c>=</c> position is a function of (a, b); its 2D Fourier transform F A Fᵀ shows which frequency it uses: a neuron
/// of frequency k has nearly all its (non-constant) variance in the terms built from const, cos k and sin k of a and b.
/// </summary>
/// <param name="Frequency">Per neuron, the frequency that explains most of its variance; 0 for a dead neuron.</param>
/// <param name="Explained">Per neuron, the share of its variance that frequency explains.</param>
/// <param name="ShareByFrequency">[neuron, k − 1]: share of the neuron's variance in frequency k's terms.</param>
/// <param name="Activations">[p, p, neurons] activations at '=' as a function of (a, b), for plotting.</param>
public sealed record NeuronClusters(int P, int[] Frequency, double[] Explained, double[,] ShareByFrequency, float[,,] Activations)
{
    /// <summary>A neuron whose activation varies by less than this (variance over all pairs) counts as dead.</summary>
    public const double DeadVariance = 1e-6;

    public int Neurons => Frequency.Length;

    /// <summary>How many neurons each frequency has, for frequencies that have any, largest first.</summary>
    public IReadOnlyList<(int Frequency, int Count, double MeanExplained)> Clusters() =>
        [.. Frequency.Select((k, n) => (k, n)).Where(x => x.k > 0).GroupBy(x => x.k)
            .Select(g => (g.Key, g.Count(), g.Average(x => Explained[x.n]))).OrderByDescending(c => c.Item2)];

    /// <summary>Share of live neurons whose cluster frequency explains at least <paramref name="threshold"/> of their variance.</summary>
    public double ShareWellExplained(double threshold = 0.85)
    {
        var live = Enumerable.Range(0, Neurons).Where(n => Frequency[n] > 0).ToList();
        return live.Count == 0 ? 0 : live.Count(n => Explained[n] >= threshold) / (double)live.Count;
    }

    /// <summary>Measures every neuron of the model's MLP on all p² inputs.</summary>
    public static NeuronClusters Measure(HookedTransformer model, ModularAddition data)
    {
        int p = data.P, frequencies = FourierBasis.Frequencies(p);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        const string hook = "blocks.0.mlp.hook_post";
        var (_, cache) = model.RunWithCache(data.AllTokens, [hook]);
        Tensor acts;
        using (cache) acts = cache[hook][.., -1].to(ScalarType.Float64).cpu().reshape(p, p, -1); // [a, b, neuron]
        var basis = FourierBasis.Create(p);                                                        // [p, p]
        var spectrum = einsum("ia,abn,jb->ijn", basis, acts, basis).pow(2);                      // [p, p, neuron]: energy per 2D term
        spectrum[0, 0] = zeros_like(spectrum[0, 0]); // the mean is not variance
        var total = spectrum.sum([0, 1]);                                                          // [neuron]
        var masks = zeros(frequencies, p, p, dtype: ScalarType.Float64);                           // [k, p, p]: terms made of const, cos k, sin k
        for (int k = 1; k <= frequencies; k++)
        {
            long[] rows = [0, 2 * k - 1, 2 * k];
            foreach (long i in rows) foreach (long j in rows) masks[k - 1, i, j] = 1;
            masks[k - 1, 0, 0] = 0;
        }
        var share = einsum("kij,ijn->nk", masks, spectrum) / total.clamp_min(1e-30).unsqueeze(1); // [neuron, k]
        int n = (int)acts.shape[2];
        var shareGrid = new double[n, frequencies];
        var flat = share.contiguous().data<double>().ToArray();
        Buffer.BlockCopy(flat, 0, shareGrid, 0, flat.Length * sizeof(double));
        var variance = (total / (p * p)).data<double>().ToArray();
        var frequency = new int[n];
        var explained = new double[n];
        for (int i = 0; i < n; i++)
        {
            if (variance[i] < DeadVariance) continue;
            int best = 0;
            for (int k = 1; k < frequencies; k++) if (shareGrid[i, k] > shareGrid[i, best]) best = k;
            (frequency[i], explained[i]) = (best + 1, shareGrid[i, best]);
        }
        var grid = new float[p, p, n];
        var actValues = acts.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        Buffer.BlockCopy(actValues, 0, grid, 0, actValues.Length * sizeof(float));
        return new NeuronClusters(p, frequency, explained, shareGrid, grid);
    }
}
