using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Techniques.Circuits;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>
/// Where a TransformerLens user looks: <c>cache.decompose_resid</c>, <c>cache.accumulated_resid</c>,
/// <c>cache.stack_head_results</c>, <c>cache.apply_ln_to_stack</c>, <c>cache.logit_attrs</c> on the cache, and
/// <c>model.QK</c> / <c>model.OV</c> on the model. Each is the SharpLens technique of the same meaning
/// (<see cref="DirectLogitAttribution"/>, <see cref="WeightCircuits"/>), reached by TransformerLens's name; the cache
/// does not know its model, so the model is the first argument.
/// </summary>
public static class TransformerLensNames
{
    extension(ActivationCache cache)
    {
        /// <summary><c>cache.decompose_resid()</c>: embed, pos_embed, then each layer's attn_out and mlp_out [component, batch, pos, d_model] (<see cref="DirectLogitAttribution.DecomposedResidual"/>).</summary>
        public ResidualStack DecomposeResid(HookedTransformer model) => DirectLogitAttribution.DecomposedResidual(model, cache);

        /// <summary><c>cache.accumulated_resid()</c>: resid_pre of every layer, then the final resid_post (<see cref="DirectLogitAttribution.AccumulatedResidual"/>).</summary>
        public ResidualStack AccumulatedResid(HookedTransformer model) => DirectLogitAttribution.AccumulatedResidual(model, cache);

        /// <summary><c>cache.stack_head_results()</c>, with each layer's b_O and mlp_out beside its heads so the stack sums to the residual (<see cref="DirectLogitAttribution.PerHeadResidual"/>).</summary>
        public ResidualStack StackHeadResults(HookedTransformer model) => DirectLogitAttribution.PerHeadResidual(model, cache);

        /// <summary><c>cache.apply_ln_to_stack(stack)</c>: each piece centred and divided by the cached final scale (<see cref="DirectLogitAttribution.ApplyLnToStack"/>).</summary>
        /// <param name="components">[component, batch, pos, d_model]</param>
        public Tensor ApplyLnToStack(HookedTransformer model, Tensor components) => DirectLogitAttribution.ApplyLnToStack(model, components, cache);

        /// <summary><c>cache.logit_attrs(stack, tokens, incorrect_tokens)</c>: each piece's share of answer − wrong logits at a position (<see cref="DirectLogitAttribution.Project"/>).</summary>
        public LogitAttribution LogitAttrs(HookedTransformer model, ResidualStack stack, Tensor answers, Tensor wrongs, int position = -1) =>
            DirectLogitAttribution.Project(model, stack, cache, answers, wrongs, position);
    }

    extension(HookedTransformer model)
    {
        /// <summary><c>model.QK</c>: every head's QK circuit W_Q·W_Kᵀ, [n_layers, n_heads, d_model, d_model], factored (<see cref="WeightCircuits.QK"/>).</summary>
        public FactoredMatrix QK => WeightCircuits.QK(model);

        /// <summary><c>model.OV</c>: every head's OV circuit W_V·W_O, [n_layers, n_heads, d_model, d_model], factored (<see cref="WeightCircuits.OV"/>).</summary>
        public FactoredMatrix OV => WeightCircuits.OV(model);
    }
}
