namespace SharpLens.Saes;

/// <summary>How an SAE turns pre-activations into features (SAELens's <c>architecture</c>).</summary>
public enum SaeArchitecture
{
    /// <summary>f = ReLU(x̃ W_enc + b_enc); trained with MSE + λ Σ_i f_i ‖W_dec,i‖.</summary>
    Standard,
    /// <summary>Keep the k largest pre-activations of each input, then ReLU.</summary>
    TopK,
    /// <summary>Keep the k × batch largest over the whole batch while training; a learned threshold (JumpReLU) at inference.</summary>
    BatchTopK,
    /// <summary>f = pre · 1[pre &gt; θ], θ = <c>threshold</c> per feature.</summary>
    JumpReLU,
    /// <summary>f = 1[x̃ W_enc + b_gate &gt; 0] · ReLU(x̃ (W_enc ⊙ exp r_mag) + b_mag).</summary>
    Gated,
    /// <summary>A ReLU SAE that reads one hook and predicts another (d_out may differ from d_in).</summary>
    Transcoder,
    /// <summary>A transcoder with a linear skip path: output + x W_skip.</summary>
    SkipTranscoder,
}

/// <summary>SAELens's <c>normalize_activations</c>: what happens to an input before encoding and is undone after decoding.</summary>
public enum ActivationNormalization
{
    None,
    /// <summary>A constant scale estimated at training time; SAELens folds it into the weights, so at run time it is the identity.</summary>
    ExpectedAverageOnlyIn,
    /// <summary>Each input is scaled to norm √d_in; the output is scaled back by the same factor.</summary>
    ConstantNormRescale,
    /// <summary>Each input is centred and divided by (std + 1e-5), std unbiased; the output gets std and mean back.</summary>
    LayerNorm,
}

/// <summary>Where the SAE was trained: SAELens's <c>metadata</c> object (top-level keys in pre-6.0 configs).</summary>
public sealed record SaeMetadata
{
    public string? ModelName { get; init; }
    public string? HookName { get; init; }
    public int? HookHeadIndex { get; init; }
    public int? ContextSize { get; init; }
    public bool? PrependBos { get; init; }
    public string? DatasetPath { get; init; }
    public string? NeuronpediaId { get; init; }
    /// <summary>The hook a transcoder writes to.</summary>
    public string? HookNameOut { get; init; }
}

/// <summary>The shape and behaviour of a sparse autoencoder or transcoder, as SAELens's cfg.json states it.</summary>
public sealed record SaeConfig(SaeArchitecture Architecture, int DIn, int DSae)
{
    /// <summary>Output width; only transcoders may differ from <see cref="DIn"/>.</summary>
    public int? DOut { get; init; }
    /// <summary>Features kept per input (TopK) or on average per input (BatchTopK).</summary>
    public int K { get; init; }
    public string DType { get; init; } = "float32";
    /// <summary>Subtract b_dec from the input before encoding (SAELens's default for SAEs, never for Gemma Scope).</summary>
    public bool ApplyBDecToInput { get; init; } = true;
    public ActivationNormalization NormalizeActivations { get; init; } = ActivationNormalization.None;
    /// <summary>SAELens's <c>reshape_activations: "hook_z"</c>: inputs [.., n_heads, d_head] are flattened to d_in and back.</summary>
    public bool ReshapeHookZ { get; init; }
    public SaeMetadata Metadata { get; init; } = new();

    public int OutputDim => DOut ?? DIn;
    public bool IsTranscoder => Architecture is SaeArchitecture.Transcoder or SaeArchitecture.SkipTranscoder;
    public bool HasThreshold => Architecture is SaeArchitecture.JumpReLU or SaeArchitecture.BatchTopK;

    /// <summary>Checks the numbers fit together; a bad config names the field and the fix.</summary>
    public SaeConfig Validated()
    {
        if (DIn <= 0 || DSae <= 0) throw new ArgumentException($"d_in and d_sae must be positive; got d_in = {DIn}, d_sae = {DSae}.", DIn <= 0 ? "d_in" : "d_sae");
        if (DOut is { } o && o != DIn && !IsTranscoder)
            throw new ArgumentException($"d_out = {o} differs from d_in = {DIn}, but a {Architecture} SAE reconstructs its input; use architecture transcoder for a different output.", "d_out");
        if (Architecture is SaeArchitecture.TopK or SaeArchitecture.BatchTopK && (K <= 0 || K > DSae))
            throw new ArgumentException($"A {Architecture} SAE needs k in [1, d_sae = {DSae}]; got k = {K}.", "k");
        if (ApplyBDecToInput && OutputDim != DIn)
            throw new ArgumentException($"apply_b_dec_to_input needs b_dec in the input space, but d_out = {OutputDim} ≠ d_in = {DIn}; set it false for this transcoder.", "apply_b_dec_to_input");
        return this;
    }
}
