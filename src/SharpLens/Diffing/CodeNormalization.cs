namespace SharpLens.Diffing;

/// <summary>
/// How a crosscoder weighs a latent's activation by its decoder, in the sparsity penalty and in BatchTopK's ranking
/// (dictionary_learning's <c>CodeNormalization</c>; the numbers are its enum values, stored as <c>code_normalization_id</c>).
/// </summary>
public enum CodeNormalization
{
    /// <summary>Σ_m ‖W_dec^m_i‖: the sum of the per-model decoder norms (Anthropic's crosscoder; encourages exclusive latents).</summary>
    Crosscoder = 1,
    /// <summary>‖[W_dec^1_i, …, W_dec^M_i]‖: the norm of the concatenated decoder, as one SAE over all models.</summary>
    Sae = 2,
    /// <summary>α_sae · SAE + α_cc · CROSSCODER.</summary>
    Mixed = 3,
    /// <summary>1: raw activations.</summary>
    None = 4,
    /// <summary>Per-model codes (not supported by SharpLens; named so such a file is refused clearly).</summary>
    Decoupled = 5,
}

/// <summary>How a crosscoder makes its code sparse.</summary>
public enum CrossCoderArchitecture
{
    /// <summary>ReLU with an L1 penalty on the code-normalised activations (dictionary_learning's <c>CrossCoder</c>).</summary>
    L1,
    /// <summary>
    /// BatchTopK (<c>BatchTopKCrossCoder</c>): training keeps the k·batch largest code-normalised activations of the batch;
    /// inference keeps those above the threshold estimated during training.
    /// </summary>
    BatchTopK,
}
