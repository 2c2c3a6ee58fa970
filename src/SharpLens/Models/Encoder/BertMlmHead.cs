using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using SharpLens.Models.Components;
using LayerNorm = SharpLens.Models.Components.LayerNorm;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>
/// The masked-LM head's transform, as TransformerLens's BertMLMHead: ln(gelu(x W + b)); the unembedding
/// (W_U = W_Eᵀ in BERT, plus a bias b_U) follows it.
/// </summary>
/// <remarks>W is stored [d_model_in, d_model_out] and applied as x W, like every other SharpLens weight.</remarks>
public sealed class BertMlmHead : nn.Module
{
    public Parameter W; // [d_model, d_model]
    public Parameter b; // [d_model]
    public LayerNorm ln;

    public BertMlmHead(ModelConfig cfg, HookPointSet hooks) : base("mlm_head")
    {
        W = new Parameter(ParameterAllocation.Empty(cfg.DModel, cfg.DModel));
        b = new Parameter(ParameterAllocation.Zeros(cfg.DModel));
        ln = new LayerNorm(cfg, Normalization.LN, "mlm_head.ln", hooks);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => ln.Forward(nn.functional.gelu(Affine.Apply(x, W, b))); // [batch, pos, d_model]
}
