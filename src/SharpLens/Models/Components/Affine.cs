using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>x W + b over the last dimension of x, as one fused multiply-add.</summary>
static class Affine
{
    public static Tensor Apply(Tensor x, Tensor W, Tensor b) => // x: [..., d_in], W: [d_in, d_out] → [..., d_out]
        addmm(b, x.reshape(-1, x.shape[^1]), W, beta: 1, alpha: 1).view([.. x.shape[..^1], W.shape[^1]]);
}
