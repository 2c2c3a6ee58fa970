using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>Latent Scaling's fits for one latent: β of each target, the two ratios, and how often it was active.</summary>
/// <param name="RatioError">ν^ε = β(base error) / β(ft error): high ⇒ the direction is in the base's residual (Complete Shrinkage).</param>
/// <param name="RatioReconstruction">ν^r = β(base reconstruction) / β(ft reconstruction): high ⇒ other latents rebuild it in the base (Latent Decoupling).</param>
public sealed record LatentScale(int Latent, double BetaBaseError, double BetaFinetunedError, double BetaBaseReconstruction,
    double BetaFinetunedReconstruction, double RatioError, double RatioReconstruction, long ActiveCount);

/// <summary>
/// Latent Scaling (Minder et al. 2025, "Overcoming Sparsity Artifacts in Crosscoders"; the diffing-toolkit's closed form): for
/// latent j with decoder direction d_j (the fine-tune's decoder) and activations f_j(x_n), the least-squares scale of d_j in a target Y,
/// <code>  β_j = argmin_β Σ_n ‖Y_n − β f_j(x_n) d_j‖² = d_jᵀ (Σ_n f_j(x_n) Y_n) / (‖d_j‖² Σ_n f_j(x_n)²)</code>
/// accumulated in one pass. Targets, in the crosscoder's normalised space: the base's and the fine-tune's reconstruction x̂, and their
/// errors with latent j's own contribution added back, x − (x̂ − f_j d_j^model). A genuinely fine-tune-specific latent has both ratios near 0.
/// </summary>
public sealed class LatentScaling : IDisposable
{
    readonly CrossCoder _cc;
    readonly int[] _latents;
    readonly int _ft;
    readonly Tensor _dFt, _dBase; // [J, d]
    readonly Tensor _aBaseRecon, _aFtRecon, _aBaseErr, _aFtErr; // [J, d]: Σ_n f_nj Y_n
    readonly Tensor _c; // [J]: Σ_n f_nj²
    readonly Tensor _count; // [J]

    public LatentScaling(CrossCoder crosscoder, IReadOnlyList<int> latents, int? finetunedIndex = null)
    {
        _cc = crosscoder;
        _latents = [.. latents];
        _ft = finetunedIndex ?? crosscoder.NModels - 1;
        using var _ = torch.no_grad();
        var index = torch.tensor(_latents.Select(i => (long)i).ToArray());
        _dFt = crosscoder.W_dec[_ft].index_select(0, index).detach().clone().DetachFromDisposeScope(); // [J, d]
        _dBase = crosscoder.W_dec[0].index_select(0, index).detach().clone().DetachFromDisposeScope(); // [J, d]
        int j = _latents.Length, d = crosscoder.DIn;
        _aBaseRecon = torch.zeros(j, d, ScalarType.Float64).DetachFromDisposeScope();
        _aFtRecon = torch.zeros(j, d, ScalarType.Float64).DetachFromDisposeScope();
        _aBaseErr = torch.zeros(j, d, ScalarType.Float64).DetachFromDisposeScope();
        _aFtErr = torch.zeros(j, d, ScalarType.Float64).DetachFromDisposeScope();
        _c = torch.zeros(j, ScalarType.Float64).DetachFromDisposeScope();
        _count = torch.zeros(j, ScalarType.Int64).DetachFromDisposeScope();
    }

    /// <summary>Adds a batch of raw paired activations [n, M, d].</summary>
    public void Add(Tensor batch)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var x = _cc.Normalize(batch.to(_cc.W_enc.dtype)); // [n, M, d]
        var f = _cc.Sparsify(_cc.EncodeReLU(x)); // [n, F]
        var xHat = _cc.DecodeNormalized(f); // [n, M, d]
        var fj = f.index_select(1, torch.tensor(_latents.Select(i => (long)i).ToArray())).to(ScalarType.Float64); // [n, J]
        var (xb, xf) = (x[.., 0].to(ScalarType.Float64), x[.., _ft].to(ScalarType.Float64)); // [n, d]
        var (rb, rf) = (xHat[.., 0].to(ScalarType.Float64), xHat[.., _ft].to(ScalarType.Float64)); // [n, d]
        var c = fj.pow(2).sum(dim: 0); // [J]
        _aBaseRecon.add_(fj.t().MatMul(rb)); // [J, d]
        _aFtRecon.add_(fj.t().MatMul(rf));
        // Y_n(j) = e_n + f_nj d_j^model, so Σ_n f_nj Y_n(j) = (fᵀ e)_j + (Σ_n f_nj²) d_j^model.
        _aBaseErr.add_(fj.t().MatMul(xb - rb) + c.unsqueeze(1) * _dBase.to(ScalarType.Float64));
        _aFtErr.add_(fj.t().MatMul(xf - rf) + c.unsqueeze(1) * _dFt.to(ScalarType.Float64));
        _c.add_(c);
        _count.add_(fj.gt(0).sum(dim: 0));
    }

    public IReadOnlyList<LatentScale> Results()
    {
        using var scope = torch.NewDisposeScope();
        var d = _dFt.to(ScalarType.Float64); // [J, d]
        var denominator = (d.pow(2).sum(1) * _c).clamp_min(1e-30); // [J]
        double[] Beta(Tensor a) => ((d * a).sum(1) / denominator).data<double>().ToArray();
        var (bbe, bfe, bbr, bfr) = (Beta(_aBaseErr), Beta(_aFtErr), Beta(_aBaseRecon), Beta(_aFtRecon));
        long[] counts = _count.data<long>().ToArray();
        return [.. _latents.Select((latent, i) => new LatentScale(latent, bbe[i], bfe[i], bbr[i], bfr[i], bbe[i] / bfe[i], bbr[i] / bfr[i], counts[i]))];
    }

    public void Dispose()
    {
        foreach (var t in new[] { _dFt, _dBase, _aBaseRecon, _aFtRecon, _aBaseErr, _aFtErr, _c, _count }) t.Dispose();
    }
}
