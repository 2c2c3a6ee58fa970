using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>What every block of one forward pass shares besides the residual stream.</summary>
/// <param name="Mask">the causal (and padding) mask of global-attention layers</param>
/// <param name="LocalMask">the sliding-window mask of local layers, when the model has any</param>
/// <param name="Rotary">cos and sin of the positions' rotary angles, [batch, pos, 1, rotary_dim] (rotary models)</param>
/// <param name="LocalRotary">the local layers' own rotary angles, when they have their own base (Gemma 3)</param>
/// <param name="Cache">cached keys and values of earlier positions, appended to as the blocks run</param>
public sealed record BlockInputs(AttentionMask Mask, AttentionMask? LocalMask = null, (Tensor Cos, Tensor Sin)? Rotary = null, KeyValueCache? Cache = null, (Tensor Cos, Tensor Sin)? LocalRotary = null);
