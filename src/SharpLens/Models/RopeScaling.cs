namespace SharpLens.Models;

/// <summary>
/// One of Hugging Face's rotary scalings other than Llama 3.1's (which is <see cref="ModelConfig.UseNtkByPartsRope"/>),
/// with every default already resolved the way transformers resolves it, so <see cref="Components.RotaryEmbedding"/> only
/// computes. For rotary dimension r, pair i has the unscaled frequency θᵢ = base^(−2i/r):
/// <code>
/// linear:   θᵢ / factor
/// dynamic:  base' = base · (factor·L/L₀ − (factor − 1))^(r/(r−2)),  θᵢ = base'^(−2i/r)      L = max(sequence length, L₀)
/// yarn:     θᵢ/factor · (1 − e) + θᵢ · e,  e = 1 − clamp((i − low)/(high − low), 0, 1);  cos, sin × attention_factor
/// longrope: θᵢ / ext_i,  ext = long_factor when the sequence is longer than L₀, else short_factor;  cos, sin × attention_factor
/// </code>
/// L₀ is <see cref="OriginalContext"/>; the sequence length is the largest position of the forward pass plus one, as
/// Hugging Face's dynamic_rope_update reads it (so dynamic and longrope change with the length, and a sequence run in
/// pieces through a key/value cache past L₀ keeps the keys it was given, as in Hugging Face's generation).
/// </summary>
public sealed record RopeScaling
{
    /// <summary>"linear", "dynamic", "yarn" or "longrope" (rope_scaling.rope_type).</summary>
    public required string RopeType { get; init; }
    /// <summary>The scale factor as transformers uses it (for yarn and longrope with an original context, max_position_embeddings / original).</summary>
    public double Factor { get; init; } = 1;
    /// <summary>L₀: the context the model was trained on (dynamic: max_position_embeddings; yarn: its original_max_position_embeddings).</summary>
    public int OriginalContext { get; init; }
    /// <summary>What cos and sin are multiplied by (yarn, longrope); 1 for the others.</summary>
    public double AttentionFactor { get; init; } = 1;
    /// <summary>YaRN's rotation counts bounding its ramp (beta_fast, beta_slow).</summary>
    public double BetaFast { get; init; } = 32;
    public double BetaSlow { get; init; } = 1;
    /// <summary>YaRN rounds the ramp's ends to whole dimensions (rope_scaling.truncate, default true).</summary>
    public bool Truncate { get; init; } = true;
    /// <summary>LongRoPE's per-frequency divisors, r/2 each.</summary>
    public IReadOnlyList<double>? ShortFactor { get; init; }
    public IReadOnlyList<double>? LongFactor { get; init; }

    public static readonly IReadOnlyList<string> Types = ["linear", "dynamic", "yarn", "longrope"];

    internal void Validate(ModelConfig cfg)
    {
        ArgumentException Bad(string problem) => new($"ModelConfig.rope_scaling ({RopeType}): {problem}", "rope_scaling");
        if (!Types.Contains(RopeType)) throw Bad($"rope_type must be one of {string.Join(", ", Types)}.");
        if (!(Factor > 0)) throw Bad($"factor must be positive, got {Factor}.");
        if (RopeType is "dynamic" or "yarn" or "longrope" && OriginalContext <= 0) throw Bad($"the original context must be positive, got {OriginalContext}.");
        if (!(AttentionFactor > 0)) throw Bad($"attention_factor must be positive, got {AttentionFactor}.");
        if (RopeType == "dynamic" && cfg.RotaryDimensions <= 2) throw Bad("dynamic scaling needs a rotary dimension above 2.");
        if (RopeType == "longrope")
        {
            int half = cfg.RotaryDimensions / 2;
            if (ShortFactor?.Count != half || LongFactor?.Count != half)
                throw Bad($"short_factor and long_factor need rotary_dim / 2 = {half} numbers each, got {ShortFactor?.Count ?? 0} and {LongFactor?.Count ?? 0}.");
            if (ShortFactor.Concat(LongFactor).Any(f => !(f > 0))) throw Bad("short_factor and long_factor must be positive.");
        }
    }
}
