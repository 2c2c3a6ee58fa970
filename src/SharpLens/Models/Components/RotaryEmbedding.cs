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
/// θ' = (1 − s)·θ/factor + s·θ with s = (L/λ − low)/(high − low). The other scalings are <see cref="RopeScaling"/>'s.
/// Gemma 3's local layers have their own base (<see cref="ModelConfig.RotaryBaseLocal"/>) and no scaling.
/// </remarks>
public sealed class RotaryEmbedding
{
    readonly ModelConfig _cfg;
    readonly int _rotaryDim;
    readonly double _base;
    readonly RopeScaling? _scaling;
    readonly float[] _inverseFrequency;

    /// <param name="local">the angles of local (sliding-window) layers: <see cref="ModelConfig.RotaryBaseLocal"/> when set, never scaled</param>
    public RotaryEmbedding(ModelConfig cfg, bool local = false)
    {
        _cfg = cfg;
        _rotaryDim = cfg.RotaryDimensions;
        bool ownLocal = local && cfg.RotaryBaseLocal is not null;
        _base = ownLocal ? cfg.RotaryBaseLocal!.Value : cfg.RotaryBase;
        _scaling = ownLocal ? null : cfg.RopeScaling;
        _inverseFrequency = InverseFrequencies(_base, ntkByParts: !ownLocal && cfg.UseNtkByPartsRope, sequenceLength: 0);
    }

    /// <summary>θᵢ = base^(−2i / rotary_dim), scaled as the config asks; computed in float64, used in float32.</summary>
    float[] InverseFrequencies(double rotaryBase, bool ntkByParts, long sequenceLength)
    {
        var cfg = _cfg;
        int dims = _rotaryDim;
        var theta = new float[dims / 2];
        if (_scaling is { RopeType: "dynamic" } dynamic)
        {
            // Hugging Face's dynamic NTK: the base grows once the sequence outgrows the original context.
            double length = Math.Max(sequenceLength, dynamic.OriginalContext);
            rotaryBase *= Math.Pow(dynamic.Factor * length / dynamic.OriginalContext - (dynamic.Factor - 1), dims / (dims - 2.0));
        }
        double low = 0, high = 0;
        if (_scaling is { RopeType: "yarn" } yarn)
        {
            // The dimension at which a wavelength fits `rotations` times into the original context.
            double Dimension(double rotations) => dims * Math.Log(yarn.OriginalContext / (rotations * 2 * Math.PI)) / (2 * Math.Log(rotaryBase));
            (low, high) = (Dimension(yarn.BetaFast), Dimension(yarn.BetaSlow));
            if (yarn.Truncate) (low, high) = (Math.Floor(low), Math.Ceiling(high));
            (low, high) = (Math.Max(low, 0), Math.Min(high, dims - 1));
            if (low == high) high += 0.001;
        }
        for (int i = 0; i < theta.Length; i++)
        {
            double t = Math.Pow(rotaryBase, -2.0 * i / dims);
            if (ntkByParts)
            {
                double wavelength = 2 * Math.PI / t, context = cfg.NtkOriginalCtxLen;
                double lowFreq = cfg.NtkByPartsLowFreqFactor, highFreq = cfg.NtkByPartsHighFreqFactor, factor = cfg.NtkByPartsFactor;
                if (wavelength > context / lowFreq) t /= factor;
                else if (wavelength >= context / highFreq)
                {
                    double s = (context / wavelength - lowFreq) / (highFreq - lowFreq);
                    t = (1 - s) * t / factor + s * t;
                }
            }
            switch (_scaling?.RopeType)
            {
                case "linear": t /= _scaling.Factor; break;
                case "yarn":
                    double extrapolation = 1 - Math.Clamp((i - low) / (high - low), 0, 1);
                    t = t / _scaling.Factor * (1 - extrapolation) + t * extrapolation;
                    break;
                case "longrope":
                    var divisors = sequenceLength > _scaling.OriginalContext ? _scaling.LongFactor! : _scaling.ShortFactor!;
                    t /= divisors[i];
                    break;
            }
            theta[i] = (float)t;
        }
        return theta;
    }

    /// <summary>cos and sin of every position's angles, [batch, pos, 1, rotary_dim] each, in float32 as Hugging Face computes them.</summary>
    /// <param name="positions">[batch, pos] position of each token</param>
    public (Tensor Cos, Tensor Sin) Angles(Tensor positions)
    {
        var frequencies = _inverseFrequency;
        if (_scaling?.RopeType is "dynamic" or "longrope")
        {
            // These two depend on the sequence length, read as the largest position plus one.
            long length = positions.max().item<long>() + 1;
            frequencies = InverseFrequencies(_base, ntkByParts: false, sequenceLength: length);
        }
        var inverseFrequency = torch.tensor(frequencies, device: positions.device); // [rotary_dim / 2]
        var angles = positions.to(ScalarType.Float32)[.., .., TensorIndex.None] * inverseFrequency; // [batch, pos, rotary_dim / 2]
        var both = torch.cat([angles, angles], -1)[.., .., TensorIndex.None, ..]; // [batch, pos, 1, rotary_dim]
        double attentionFactor = _scaling?.AttentionFactor ?? 1;
        return attentionFactor == 1 ? (both.cos(), both.sin()) : (both.cos() * (float)attentionFactor, both.sin() * (float)attentionFactor);
    }

    /// <summary>Rotates the first rotary_dim dimensions of every head of x [batch, pos, head, d_head].</summary>
    public Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        var rotated = x[.., .., .., .._rotaryDim]; // [batch, pos, head, rotary_dim]
        var half = _rotaryDim / 2;
        var rotateHalf = torch.cat([-rotated[.., .., .., half..], rotated[.., .., .., ..half]], -1); // [batch, pos, head, rotary_dim]
        var result = (rotated * cos.to(x.dtype)).Plus(rotateHalf * sin.to(x.dtype)); // Plus: see HeldScalars
        return _rotaryDim == x.shape[^1] ? result : torch.cat([result, x[.., .., .., _rotaryDim..]], -1); // [batch, pos, head, d_head]
    }
}
