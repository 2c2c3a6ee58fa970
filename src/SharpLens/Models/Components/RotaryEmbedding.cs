using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// Rotary positional embeddings in the rotate-half convention of Hugging Face Llama and GPT-NeoX. The first
/// rotary_dim dimensions of each query and key head are split into halves (x₁, x₂), and pair i is rotated by the
/// angle p·θᵢ at position p, θᵢ = base^(−2i / rotary_dim):
/// <code>
/// rotate(x) = x ⊙ cos + rotate_half(x) ⊙ sin,   rotate_half(x₁, x₂) = (−x₂, x₁),   cos, sin = cos(pθ), sin(pθ) repeated twice
/// </code>
/// The other d_head − rotary_dim dimensions pass unchanged (NeoX's partial rotary). Since rotations compose,
/// q(p)·k(p′) depends on the positions only through p − p′.
/// </summary>
/// <remarks>
/// Llama 3.1's scaling (<see cref="ModelConfig.UseNtkByPartsRope"/>) changes θᵢ by wavelength λᵢ = 2π/θᵢ against the
/// original context L: λ &lt; L/high keeps θ, λ &gt; L/low uses θ/factor, and between them
/// θ' = (1 − s)·θ/factor + s·θ with s = (L/λ − low)/(high − low).
/// </remarks>
public sealed class RotaryEmbedding(ModelConfig cfg)
{
    readonly int _rotaryDim = cfg.RotaryDimensions;
    readonly float[] _inverseFrequency = InverseFrequencies(cfg);

    /// <summary>θᵢ = base^(−2i / rotary_dim), Llama 3.1-scaled when the config asks; computed in float64, used in float32.</summary>
    static float[] InverseFrequencies(ModelConfig cfg)
    {
        int dims = cfg.RotaryDimensions;
        var theta = new float[dims / 2];
        for (int i = 0; i < theta.Length; i++)
        {
            double t = Math.Pow(cfg.RotaryBase, -2.0 * i / dims);
            if (cfg.UseNtkByPartsRope)
            {
                double wavelength = 2 * Math.PI / t, context = cfg.NtkOriginalCtxLen;
                double low = cfg.NtkByPartsLowFreqFactor, high = cfg.NtkByPartsHighFreqFactor, factor = cfg.NtkByPartsFactor;
                if (wavelength > context / low) t /= factor;
                else if (wavelength >= context / high)
                {
                    double s = (context / wavelength - low) / (high - low);
                    t = (1 - s) * t / factor + s * t;
                }
            }
            theta[i] = (float)t;
        }
        return theta;
    }

    /// <summary>cos and sin of every position's angles, [batch, pos, 1, rotary_dim] each, in float32 as Hugging Face computes them.</summary>
    /// <param name="positions">[batch, pos] position of each token</param>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions)
    {
        var inverseFrequency = torch.tensor(_inverseFrequency, device: positions.device); // [rotary_dim / 2]
        var angles = positions.to(ScalarType.Float32)[.., .., TensorIndex.None] * inverseFrequency; // [batch, pos, rotary_dim / 2]
        var both = torch.cat([angles, angles], -1)[.., .., TensorIndex.None, ..]; // [batch, pos, 1, rotary_dim]
        return (both.cos(), both.sin());
    }

    /// <summary>Rotates the first rotary_dim dimensions of every head of x [batch, pos, head, d_head].</summary>
    public Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var rotated = x[.., .., .., .._rotaryDim]; // [batch, pos, head, rotary_dim]
        var half = _rotaryDim / 2;
        var rotateHalf = torch.cat([-rotated[.., .., .., half..], rotated[.., .., .., ..half]], -1); // [batch, pos, head, rotary_dim]
        var result = rotated * cos.to(x.dtype) + rotateHalf * sin.to(x.dtype);
        return _rotaryDim == x.shape[^1] ? result : torch.cat([result, x[.., .., .., _rotaryDim..]], -1); // [batch, pos, head, d_head]
    }
}
