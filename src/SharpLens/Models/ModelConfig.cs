using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;

namespace SharpLens.Models;

/// <summary>How a block normalises its input, with TransformerLens's names.</summary>
public enum Normalization
{
    /// <summary>LayerNorm with a learned weight and bias.</summary>
    LN,
    /// <summary>LayerNorm with no weight or bias: what remains after the weights were folded into the next layer.</summary>
    LNPre,
    /// <summary>No normalisation at all.</summary>
    None,
    /// <summary>RMSNorm with a learned weight: x / sqrt(mean(x²) + ε) ⊙ w (Llama, Mistral, Qwen2, Gemma).</summary>
    RMS,
    /// <summary>RMSNorm with no weight: what remains after the weight was folded into the next layer.</summary>
    RMSPre,
}

/// <summary>How token positions enter the residual stream.</summary>
public enum PositionalEmbedding
{
    /// <summary>A learned vector per position, added to the token embedding (GPT-2).</summary>
    Learned,
    /// <summary>No positional information beyond the causal mask.</summary>
    None,
    /// <summary>Rotary embeddings: queries and keys are rotated by an angle proportional to their position (Llama, NeoX).</summary>
    Rotary,
}

/// <summary>The MLP nonlinearity, parsed from TransformerLens / Hugging Face spellings.</summary>
public enum Activation
{
    Relu,
    /// <summary>Exact GELU, x Φ(x).</summary>
    Gelu,
    /// <summary>GPT-2's tanh approximation ("gelu_new", also "gelu_fast" and "gelu_pytorch_tanh").</summary>
    GeluNew,
    Silu,
}

/// <summary>
/// Everything that determines a transformer's shape and computation. Serialised with TransformerLens's
/// field names (d_model, n_layers, ...), so a config reads the same in both worlds.
/// </summary>
public sealed record ModelConfig
{
    public required int DModel { get; init; }
    public required int NLayers { get; init; }
    public required int NHeads { get; init; }
    public required int DHead { get; init; }
    /// <summary>Hidden width of the MLP; ignored when <see cref="AttnOnly"/>.</summary>
    public int DMlp { get; init; }
    public required int DVocab { get; init; }
    /// <summary>Longest sequence the model accepts (the number of learned positions).</summary>
    public required int NCtx { get; init; }
    public Activation ActFn { get; init; } = Activation.GeluNew;
    public Normalization NormalizationType { get; init; } = Normalization.LN;
    /// <summary>The final norm; by default the same kind as the blocks'.</summary>
    public Normalization? FinalNormalizationType { get; init; }
    public PositionalEmbedding PositionalEmbeddingType { get; init; } = PositionalEmbedding.Learned;
    public bool AttnOnly { get; init; }
    /// <summary>The unembedding starts as (and is saved as) the transposed embedding.</summary>
    public bool TiedEmbeddings { get; init; }
    public double Eps { get; init; } = 1e-5;
    /// <summary>Compute the per-head attention output <c>hook_result</c> [batch, pos, head, d_model] (costs memory).</summary>
    public bool UseAttnResult { get; init; }
    /// <summary>Standard deviation of the random initialisation; TransformerLens's default is 0.8 / sqrt(d_model).</summary>
    public double? InitializerRange { get; init; }
    /// <summary>Token id that starts a sequence, if the model has one.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>Name of the tokenizer to pair with the model ("gpt2"), if any.</summary>
    public string? TokenizerName { get; init; }
    /// <summary>Name of the model, for messages and reports.</summary>
    public string ModelName { get; init; } = "custom";
    /// <summary>True once LayerNorm weights were folded in and writing weights centred (see WeightProcessing).</summary>
    public bool WeightsProcessed { get; init; }

    /// <summary>Grouped-query attention: this many key/value heads, each shared by n_heads / n_key_value_heads query heads; null for one per query head.</summary>
    public int? NKeyValueHeads { get; init; }
    /// <summary>How many leading dimensions of each head rotary embeddings rotate; null for all d_head (NeoX rotates a fraction).</summary>
    public int? RotaryDim { get; init; }
    /// <summary>The base θ of the rotary frequencies θ^(−2i/rotary_dim) (Hugging Face's rope_theta).</summary>
    public double RotaryBase { get; init; } = 10000;
    /// <summary>The MLP is gated: act(x W_gate) ⊙ (x W_in) instead of act(x W_in) (SwiGLU, GeGLU).</summary>
    public bool GatedMlp { get; init; }
    /// <summary>Attention and MLP read the same resid_pre and add in parallel (GPT-NeoX's use_parallel_residual).</summary>
    public bool ParallelAttnMlp { get; init; }
    /// <summary>Attention scores become c·tanh(scores / c) before masking (Gemma 2); null for none.</summary>
    public double? AttnScoresSoftCap { get; init; }
    /// <summary>Logits become c·tanh(logits / c) (Gemma 2); null for none.</summary>
    public double? OutputLogitsSoftCap { get; init; }
    /// <summary>Some layers attend only to the last <see cref="WindowSize"/> positions (sliding-window attention).</summary>
    public bool UseLocalAttn { get; init; }
    /// <summary>How many positions a local layer's query sees, itself included.</summary>
    public int? WindowSize { get; init; }
    /// <summary>"global" or "local" per layer, when <see cref="UseLocalAttn"/>; null means every layer is local.</summary>
    public IReadOnlyList<string>? AttnTypes { get; init; }
    /// <summary>Each sublayer's output is normalised again before it joins the residual stream (Gemma 2's ln1_post, ln2_post).</summary>
    public bool UseNormalizationBeforeAndAfter { get; init; }
    /// <summary>Attention scores are q·k / attn_scale; null for sqrt(d_head) (Gemma 2 uses sqrt(query_pre_attn_scalar)).</summary>
    public double? AttnScale { get; init; }

    /// <summary>Llama 3.1's rotary scaling ("llama3", TransformerLens's NTK-by-parts): long wavelengths are stretched by
    /// <see cref="NtkByPartsFactor"/>, short ones kept, those between blended (see RotaryEmbedding).</summary>
    [JsonPropertyName("use_NTK_by_parts_rope")] public bool UseNtkByPartsRope { get; init; }
    [JsonPropertyName("NTK_by_parts_factor")] public double NtkByPartsFactor { get; init; } = 8;
    [JsonPropertyName("NTK_by_parts_low_freq_factor")] public double NtkByPartsLowFreqFactor { get; init; } = 1;
    [JsonPropertyName("NTK_by_parts_high_freq_factor")] public double NtkByPartsHighFreqFactor { get; init; } = 4;
    [JsonPropertyName("NTK_original_ctx_len")] public int NtkOriginalCtxLen { get; init; } = 8192;

    /// <summary>Hugging Face's other rotary scalings (linear, dynamic, yarn, longrope), applied to the global layers; null for none (see <see cref="RopeScaling"/>).</summary>
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>The rotary base of local (sliding-window) layers when it differs from <see cref="RotaryBase"/> (Gemma 3's rope_local_base_freq); local layers are never scaled.</summary>
    public double? RotaryBaseLocal { get; init; }
    /// <summary>Queries and keys pass an RMSNorm before rotation (Qwen 3, Gemma 3, OLMo 2): <c>attn.q_norm</c>, <c>attn.k_norm</c>.</summary>
    public bool UseQkNorm { get; init; }
    /// <summary>With <see cref="UseQkNorm"/>: normalise each head's d_head values (Qwen 3, Gemma 3), or false for the whole projection at once, n_heads·d_head values (OLMo 2).</summary>
    public bool QkNormPerHead { get; init; } = true;
    /// <summary>Each sublayer's output is normalised by a norm of this kind before it joins the residual stream, while the blocks' input norms are
    /// <see cref="NormalizationType"/> (OLMo 2: RMS after, None before); null unless a family needs it. <see cref="UseNormalizationBeforeAndAfter"/> implies it.</summary>
    public Normalization? PostNormalizationType { get; init; }
    /// <summary>Sparse mixture of experts in every MLP (Mixtral): this many experts; null for a dense MLP.</summary>
    public int? NumExperts { get; init; }
    /// <summary>How many experts each token is routed to (the top-k of the router's softmax, renormalised).</summary>
    public int? ExpertsPerToken { get; init; }

    [JsonIgnore] public int KeyValueHeads => NKeyValueHeads ?? NHeads;
    [JsonIgnore] public int RotaryDimensions => RotaryDim ?? DHead;
    [JsonIgnore] public double AttentionScale => AttnScale ?? Math.Sqrt(DHead);
    [JsonIgnore] public bool IsRms => NormalizationType is Normalization.RMS or Normalization.RMSPre;
    /// <summary>The kind of norm after each sublayer (ln1_post, ln2_post), or null when there is none.</summary>
    [JsonIgnore] public Normalization? SublayerOutputNormalization =>
        UseNormalizationBeforeAndAfter ? (IsRms ? Normalization.RMS : Normalization.LN) : PostNormalizationType;
    [JsonIgnore] public bool IsMoe => NumExperts is not null;

    /// <summary>The window of a layer's attention, or null for a layer that sees every earlier position.</summary>
    public int? WindowOf(int layer) =>
        UseLocalAttn && (AttnTypes is null || AttnTypes[layer] == "local") ? WindowSize : null;

    [JsonIgnore] public Normalization FinalNormalization => FinalNormalizationType ?? NormalizationType;
    [JsonIgnore] public double InitRange => InitializerRange ?? 0.8 / Math.Sqrt(DModel);

    /// <summary>Checks the numbers fit together; throws naming the field.</summary>
    public ModelConfig Validated()
    {
        void Positive(int v, string name) { if (v <= 0) throw new ArgumentException($"ModelConfig.{name} must be positive, got {v}.", name); }
        Positive(DModel, "d_model"); Positive(NLayers, "n_layers"); Positive(NHeads, "n_heads"); Positive(DHead, "d_head");
        Positive(DVocab, "d_vocab"); Positive(NCtx, "n_ctx");
        if (!AttnOnly) Positive(DMlp, "d_mlp");
        if (NKeyValueHeads is { } kv && (kv <= 0 || NHeads % kv != 0))
            throw new ArgumentException($"ModelConfig.n_key_value_heads = {kv} must be positive and divide n_heads = {NHeads}.", "n_key_value_heads");
        if (PositionalEmbeddingType == PositionalEmbedding.Rotary && (RotaryDimensions <= 0 || RotaryDimensions > DHead || RotaryDimensions % 2 != 0))
            throw new ArgumentException($"ModelConfig.rotary_dim = {RotaryDimensions} must be even and in [2, d_head = {DHead}].", "rotary_dim");
        if (UseNtkByPartsRope && (NtkByPartsFactor <= 0 || NtkOriginalCtxLen <= 0 || NtkByPartsHighFreqFactor <= NtkByPartsLowFreqFactor || NtkByPartsLowFreqFactor <= 0))
            throw new ArgumentException($"ModelConfig NTK-by-parts rotary scaling needs factor > 0, original ctx > 0 and 0 < low_freq_factor < high_freq_factor; got factor {NtkByPartsFactor}, ctx {NtkOriginalCtxLen}, low {NtkByPartsLowFreqFactor}, high {NtkByPartsHighFreqFactor}.", "NTK_by_parts_factor");
        if (RotaryBase <= 0) throw new ArgumentException($"ModelConfig.rotary_base must be positive, got {RotaryBase}.", "rotary_base");
        if (AttnScoresSoftCap is <= 0) throw new ArgumentException($"ModelConfig.attn_scores_soft_cap must be positive or null, got {AttnScoresSoftCap}.", "attn_scores_soft_cap");
        if (OutputLogitsSoftCap is <= 0) throw new ArgumentException($"ModelConfig.output_logits_soft_cap must be positive or null, got {OutputLogitsSoftCap}.", "output_logits_soft_cap");
        if (AttnScale is <= 0) throw new ArgumentException($"ModelConfig.attn_scale must be positive or null, got {AttnScale}.", "attn_scale");
        if (UseLocalAttn)
        {
            if (WindowSize is not > 0) throw new ArgumentException($"ModelConfig.use_local_attn needs a positive window_size, got {WindowSize?.ToString() ?? "null"}.", "window_size");
            if (AttnTypes is { } types && (types.Count != NLayers || types.Any(t => t is not ("global" or "local"))))
                throw new ArgumentException($"ModelConfig.attn_types must list \"global\" or \"local\" for each of the {NLayers} layers, got [{string.Join(", ", types)}].", "attn_types");
        }
        if (NumExperts is { } experts && (experts <= 0 || ExpertsPerToken is not { } k || k <= 0 || k > experts))
            throw new ArgumentException($"ModelConfig.num_experts = {experts} needs experts_per_token in [1, {experts}], got {ExpertsPerToken?.ToString() ?? "null"}.", "experts_per_token");
        if (PostNormalizationType is Normalization.LNPre or Normalization.RMSPre or Normalization.None)
            throw new ArgumentException($"ModelConfig.post_normalization_type must be LN or RMS (nothing can absorb its weights), got {PostNormalizationType}.", "post_normalization_type");
        RopeScaling?.Validate(this);
        if (UseNormalizationBeforeAndAfter && NormalizationType is Normalization.None)
            throw new ArgumentException("ModelConfig.use_normalization_before_and_after needs a normalization_type other than none.", "use_normalization_before_and_after");
        return this;
    }

    /// <summary>SharpLens's JSON options (snake_case, enums as strings), source-generated: see <see cref="IO.SharpLensJson"/>.</summary>
    public static JsonSerializerOptions Json => IO.SharpLensJson.Options;

    public string ToJson() => IO.SharpLensJson.Serialize(this);
    public static ModelConfig FromJson(string json)
    {
        // Source-generated deserialisation gives every init-only property the JSON lacks default(T), not its
        // initializer (rotary_base 0, eps 0): lay the file's fields over a config that holds the defaults.
        var given = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("a model config must be a JSON object");
        var merged = JsonNode.Parse(DefaultsJson)!.AsObject();
        foreach (var (name, value) in given) merged[name] = value?.DeepClone();
        return (IO.SharpLensJson.Deserialize<ModelConfig>(merged.ToJsonString()) ?? throw new JsonException("empty model config")).Validated();
    }

    /// <summary>Every optional field at its default, the required ones left out (so a config missing one is still refused).</summary>
    static readonly string DefaultsJson = DefaultsWithoutRequired();

    static string DefaultsWithoutRequired()
    {
        var defaults = JsonNode.Parse(new ModelConfig { DModel = 1, NLayers = 1, NHeads = 1, DHead = 1, DVocab = 1, NCtx = 1 }.ToJson())!.AsObject();
        foreach (string required in new[] { "d_model", "n_layers", "n_heads", "d_head", "d_vocab", "n_ctx" }) defaults.Remove(required);
        return defaults.ToJsonString();
    }

    /// <summary>Parses TransformerLens / Hugging Face activation names.</summary>
    public static Activation ParseActivation(string name) => name.ToLowerInvariant() switch
    {
        "relu" => Activation.Relu,
        "gelu" => Activation.Gelu,
        "gelu_new" or "gelu_fast" or "gelu_pytorch_tanh" or "gelu_tanh" => Activation.GeluNew,
        "silu" or "swish" => Activation.Silu,
        _ => throw new ArgumentException($"Activation function '{name}' is not supported; use relu, gelu, gelu_new or silu.", nameof(name)),
    };
}

/// <summary>Where the model lives and in what precision.</summary>
public sealed record ModelOptions(string Device = "cpu", torch.ScalarType DType = torch.ScalarType.Float32)
{
    public torch.Device TorchDevice => new(Device);
}
