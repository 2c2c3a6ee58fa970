using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>The model's final norm applied to any residual vector, computed afresh for that vector (as the model would).</summary>
public static class FinalNorm
{
    /// <summary>
    /// LN: (x − mean) / sqrt(var + ε) ⊙ w + b; LNPre: the same without w and b; None: x itself.
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
            _ => throw new NotSupportedException($"Final norm {cfg.FinalNormalization} is not supported by the logit lens."),
        };
    }
}
