using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>The model's final norm applied to any residual vector, computed afresh for that vector (as the model would).</summary>
public static class FinalNorm
{
    /// <summary>
    /// LN: (x − mean) / sqrt(var + ε) ⊙ w + b; LNPre: the same without w and b; RMS: x / sqrt(mean(x²) + ε) ⊙ w
    /// (Llama, Mistral, Qwen, Gemma); RMSPre: the same without w; None: x itself.
    /// </summary>
    /// <param name="residual">[..., d_model]</param>
    public static Tensor Apply(HookedTransformer model, Tensor residual)
    {
        var cfg = model.Config;
        return cfg.FinalNormalization switch
        {
            Normalization.None => residual,
            Normalization.LNPre => nn.functional.layer_norm(residual, [cfg.DModel], null, null, cfg.Eps),
            Normalization.LN => nn.functional.layer_norm(residual, [cfg.DModel], model.ln_final.w, model.ln_final.b, cfg.Eps),
            Normalization.RMS => Rms(residual, cfg.Eps) * model.ln_final.w!,
            Normalization.RMSPre => Rms(residual, cfg.Eps),
            _ => throw new SharpLensArgumentException(nameof(model), $"Final norm {cfg.FinalNormalization} is not supported by the logit lens."),
        };
    }

    /// <summary>x / sqrt(mean(x²) + ε), in float32 as the model's RMSNorm (and Hugging Face's) computes it.</summary>
    static Tensor Rms(Tensor x, double eps) // [..., d_model]
    {
        var x32 = x.to(ScalarType.Float32);
        return (x32 / (x32.pow(2).mean([-1], keepdim: true) + eps).sqrt()).to(x.dtype);
    }
}
