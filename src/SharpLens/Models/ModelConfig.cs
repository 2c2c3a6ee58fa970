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
}

/// <summary>How token positions enter the residual stream.</summary>
public enum PositionalEmbedding
{
    /// <summary>A learned vector per position, added to the token embedding (GPT-2).</summary>
    Learned,
    /// <summary>No positional information beyond the causal mask.</summary>
    None,
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

    [JsonIgnore] public Normalization FinalNormalization => FinalNormalizationType ?? NormalizationType;
    [JsonIgnore] public double InitRange => InitializerRange ?? 0.8 / Math.Sqrt(DModel);

    /// <summary>Checks the numbers fit together; throws naming the field.</summary>
    public ModelConfig Validated()
    {
        void Positive(int v, string name) { if (v <= 0) throw new ArgumentException($"ModelConfig.{name} must be positive, got {v}.", name); }
        Positive(DModel, "d_model"); Positive(NLayers, "n_layers"); Positive(NHeads, "n_heads"); Positive(DHead, "d_head");
        Positive(DVocab, "d_vocab"); Positive(NCtx, "n_ctx");
        if (!AttnOnly) Positive(DMlp, "d_mlp");
        return this;
    }

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
    public static ModelConfig FromJson(string json) =>
        (JsonSerializer.Deserialize<ModelConfig>(json, Json) ?? throw new JsonException("empty model config")).Validated();

    /// <summary>Parses TransformerLens / Hugging Face activation names.</summary>
    public static Activation ParseActivation(string name) => name.ToLowerInvariant() switch
    {
        "relu" => Activation.Relu,
        "gelu" => Activation.Gelu,
        "gelu_new" or "gelu_fast" or "gelu_pytorch_tanh" => Activation.GeluNew,
        "silu" or "swish" => Activation.Silu,
        _ => throw new NotSupportedException($"Activation function '{name}' is not supported; use relu, gelu, gelu_new or silu."),
    };
}

/// <summary>Where the model lives and in what precision.</summary>
public sealed record ModelOptions(string Device = "cpu", torch.ScalarType DType = torch.ScalarType.Float32)
{
    public torch.Device TorchDevice => new(Device);
}
