using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>
/// JumpReLU's straight-through estimator (Rajamanoharan et al. 2024), shared by every trainer that learns a threshold:
/// the forward values are f = pre · 1[pre &gt; θ] and L0 = Σ 1[pre &gt; θ]; the backward pass gives θ the paper's
/// pseudo-derivatives through a rectangle kernel of width ε, K = 1[|pre − θ| &lt; ε/2] / ε:
/// ∂f/∂θ = −θ K, ∂L0/∂θ = −K. Pre-activations get the ordinary gradient of pre · 1[pre &gt; θ].
/// </summary>
public static class JumpReLUEstimator
{
    /// <summary>
    /// Activations [..., d] and each row's L0 [...] for pre-activations [..., d] and thresholds θ (broadcast against
    /// them), both carrying the estimator's gradient to θ.
    /// </summary>
    public static (Tensor Acts, Tensor L0) Apply(Tensor pre, Tensor theta, double bandwidth)
    {
        var above = pre.gt(theta).to(pre.dtype).detach();
        var u = ((pre.detach() - theta.detach()) / bandwidth).abs();
        var kernel = u.lt(0.5).to(pre.dtype) / bandwidth; // rectangle((pre − θ)/ε)/ε
        // Surrogates whose value is 0 and whose θ-gradient is the pseudo-derivative.
        var jumpSurrogate = -0.5 * theta.pow(2) * kernel;
        var stepSurrogate = -theta * kernel;
        var acts = pre * above + (jumpSurrogate - jumpSurrogate.detach());
        var l0 = (above + (stepSurrogate - stepSurrogate.detach())).sum(-1);
        return (acts, l0);
    }
}
