using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>
/// Ground truth for SAEs, after Elhage et al.'s toy models of superposition: n sparse features with known unit
/// directions in d &lt; n dimensions. Each feature is active with probability p, with a magnitude uniform in
/// [MinMagnitude, MaxMagnitude]; an input is Σ_i a_i d_i. A good SAE's decoder rows recover the d_i.
/// </summary>
public sealed class ToySuperposition : IDisposable
{
    public int NFeatures { get; }
    public int D { get; }
    public double ActiveProbability { get; }
    public double MinMagnitude { get; init; } = 0.5;
    public double MaxMagnitude { get; init; } = 1.5;
    readonly long _seed;

    /// <summary>The true feature directions [n_features, d], unit rows.</summary>
    public Tensor Directions { get; }

    public ToySuperposition(int nFeatures, int d, double activeProbability, long seed = 0)
    {
        (NFeatures, D, ActiveProbability, _seed) = (nFeatures, d, activeProbability, seed);
        var directions = torch.randn(nFeatures, d, generator: new Generator((ulong)seed)); // [n_features, d]
        Directions = (directions / directions.norm(1, keepdim: true)).DetachFromDisposeScope();
    }

    /// <summary>Expected number of active features per input.</summary>
    public double TrueL0 => NFeatures * ActiveProbability;

    /// <summary>Batch number <paramref name="index"/>: the same index always gives the same inputs [batch, d].</summary>
    public Tensor Sample(int batch, long index)
    {
        using var scope = torch.NewDisposeScope();
        return SampleActivations(batch, index).MatMul(Directions).MoveToOuterDisposeScope(); // [batch, d]
    }

    /// <summary>The true feature activations [batch, n_features] behind <see cref="Sample"/>(batch, index).</summary>
    public Tensor SampleActivations(int batch, long index)
    {
        using var scope = torch.NewDisposeScope();
        var generator = new Generator((ulong)(_seed * 1_000_003 + index + 1));
        var active = torch.rand(batch, NFeatures, generator: generator).lt(ActiveProbability); // [batch, n_features]
        var magnitude = MinMagnitude + (MaxMagnitude - MinMagnitude) * torch.rand(batch, NFeatures, generator: generator);
        return (active.to(ScalarType.Float32) * magnitude).MoveToOuterDisposeScope();
    }

    /// <summary>Mean over true features of the best cosine similarity with any row of <paramref name="decoder"/> [d_sae, d].</summary>
    public double MeanBestCosine(Tensor decoder) => MeanBestCosine(Directions, decoder);

    /// <summary>Mean over rows of <paramref name="truth"/> [n, d] of the best cosine similarity with any row of <paramref name="decoder"/> [m, d].</summary>
    public static double MeanBestCosine(Tensor truth, Tensor decoder)
    {
        using var scope = torch.NewDisposeScope();
        var directions = truth / truth.norm(1, keepdim: true);
        var rows = decoder.detach().to(ScalarType.Float32);
        rows = rows / rows.norm(1, keepdim: true).clamp_min(1e-12);
        var cosines = directions.MatMul(rows.t()); // [n_features, d_sae]
        return cosines.max(1).values.mean().item<float>();
    }

    public void Dispose() => Directions.Dispose();
}
