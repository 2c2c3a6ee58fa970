namespace SharpLens.Diffing;

/// <summary>
/// The shape and kind of a crosscoder: <see cref="NumLayers"/> activation sources (here: the same hook of M models,
/// model 0 the base, the last the fine-tune), each <see cref="ActivationDim"/> wide, read into <see cref="DictSize"/>
/// latents. The names are dictionary_learning's (config.json: activation_dim, dict_size, num_layers, k, code_normalization).
/// </summary>
public sealed record CrossCoderConfig(int ActivationDim, int DictSize, int NumLayers = 2)
{
    public CrossCoderArchitecture Architecture { get; init; } = CrossCoderArchitecture.BatchTopK;
    public CodeNormalization CodeNormalization { get; init; } = CodeNormalization.Crosscoder;
    /// <summary>BatchTopK: latents kept per token on average (the batch keeps k × batch).</summary>
    public int K { get; init; } = 100;
    /// <summary>MIXED code normalisation's weights of the SAE and CROSSCODER norms (dictionary_learning's defaults).</summary>
    public double AlphaSae { get; init; } = 1.0;
    public double AlphaCc { get; init; } = 0.1;
    /// <summary>Initial norm of every per-model decoder row (the encoder starts as the decoder's transpose); null: 1.0 for BatchTopK, 0.1 for L1.</summary>
    public double? InitNorm { get; init; }

    public double InitNormOrDefault => InitNorm ?? (Architecture == CrossCoderArchitecture.BatchTopK ? 1.0 : 0.1);

    public CrossCoderConfig Validated()
    {
        if (ActivationDim < 1) throw new ArgumentOutOfRangeException(nameof(ActivationDim), ActivationDim, "activation_dim must be positive.");
        if (DictSize < 1) throw new ArgumentOutOfRangeException(nameof(DictSize), DictSize, "dict_size must be positive.");
        if (NumLayers < 2) throw new ArgumentOutOfRangeException(nameof(NumLayers), NumLayers, "A crosscoder for diffing reads at least two models (num_layers ≥ 2).");
        if (Architecture == CrossCoderArchitecture.BatchTopK && (K < 1 || K > DictSize))
            throw new ArgumentOutOfRangeException(nameof(K), K, $"k must be between 1 and dict_size ({DictSize}).");
        if (CodeNormalization == CodeNormalization.Decoupled)
            throw new ArgumentException("DECOUPLED code normalisation (per-model codes) is not supported; use CROSSCODER, SAE, MIXED or NONE.", nameof(CodeNormalization));
        return this;
    }
}
