using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// A config.json's rotary settings, as transformers v4 writes them (<c>rope_theta</c> + <c>rope_scaling</c>) or v5
/// (<c>rope_parameters</c> holding <c>rope_theta</c> and the scaling, or one such object per layer type:
/// <c>full_attention</c>, <c>sliding_attention</c>). Both read the same; defaults resolve as transformers'
/// modeling_rope_utils resolves them (yarn's and longrope's factor become max_position_embeddings / original when an
/// original context is given; their attention factors default from it). An unknown rope_type, or a key a rope_type does
/// not have, is refused by name: a scaling read wrongly would shift every log-prob.
/// </summary>
public static class HuggingFaceRope
{
    /// <summary>What the rotary settings of one kind of layer come to.</summary>
    /// <param name="Base">rope_theta</param>
    /// <param name="Scaling">linear, dynamic, yarn or longrope, resolved; null for none</param>
    /// <param name="Llama3">Llama 3.1's scaling fields (factor, low, high, original context), or null</param>
    /// <param name="Context">the longest sequence the scaling is meant for, when it extends max_position_embeddings</param>
    public sealed record Settings(double Base, RopeScaling? Scaling, (double Factor, double Low, double High, int Original)? Llama3, int? Context);

    static readonly Dictionary<string, string[]> KeysOf = new()
    {
        ["default"] = [],
        ["linear"] = ["factor"],
        ["dynamic"] = ["factor", "original_max_position_embeddings"],
        ["yarn"] = ["factor", "attention_factor", "beta_fast", "beta_slow", "original_max_position_embeddings", "mscale", "mscale_all_dim", "truncate"],
        ["longrope"] = ["short_factor", "long_factor", "factor", "attention_factor", "original_max_position_embeddings"],
        ["llama3"] = ["factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"],
    };

    /// <summary>The global (or only) layers' settings.</summary>
    /// <param name="rotaryDim">the rotated dimensions per head (longrope's factor lists have half as many numbers)</param>
    public static Settings Read(HuggingFaceConfigJson json, int rotaryDim, double defaultTheta = 10000) => ReadLayerType(json, "full_attention", rotaryDim, defaultTheta);

    /// <summary>The settings of one layer type ("full_attention" or "sliding_attention") where v5 gives them per type; otherwise the model's.</summary>
    public static Settings ReadLayerType(HuggingFaceConfigJson json, string layerType, int rotaryDim, double defaultTheta)
    {
        var (node, field) = ScalingObject(json, layerType);
        double theta = node?.Get<double?>("rope_theta") ?? json.Double("rope_theta", defaultTheta);
        if (node is null) return new Settings(theta, null, null, null);
        string type = node.Get<string>("rope_type") ?? node.Get<string>("type") ?? "default";
        if (!KeysOf.TryGetValue(type, out var allowed))
            throw json.Problem($"{field}.rope_type is \"{type}\"; the rotary scalings SharpLens computes are {string.Join(", ", KeysOf.Keys)} (as Hugging Face names them). Remove the scaling only if the model was trained without it.");
        foreach (var key in node.Keys)
            if (key is not ("rope_type" or "type" or "rope_theta") && !allowed.Contains(key))
                throw json.Problem($"{field}.{key} is not a field of rope_type \"{type}\" (it takes {(allowed.Length == 0 ? "none" : string.Join(", ", allowed))}); SharpLens will not guess what it changes.");
        int maxPos = json.Int("max_position_embeddings");
        double Factor() => node.Get<double?>("factor") ?? throw json.Problem($"{field}.factor is missing; rope_type \"{type}\" needs it.");
        switch (type)
        {
            case "default": return new Settings(theta, null, null, null);
            case "llama3":
                return new Settings(theta, null, (Factor(), node.Double("low_freq_factor", 1), node.Double("high_freq_factor", 4),
                    node.Get<int?>("original_max_position_embeddings") ?? throw json.Problem($"{field}.original_max_position_embeddings is missing; rope_type \"llama3\" needs it.")), null);
            case "linear": return new Settings(theta, new RopeScaling { RopeType = "linear", Factor = Factor() }, null, null);
            case "dynamic":
            {
                // transformers measures the growth against max_position_embeddings (it does not read an original context here).
                double factor = Factor();
                return new Settings(theta, new RopeScaling { RopeType = "dynamic", Factor = factor, OriginalContext = maxPos }, null, (int)Math.Ceiling(maxPos * factor));
            }
            case "yarn":
            {
                double given = Factor(), factor = given;
                int original = maxPos;
                if (node.Get<int?>("original_max_position_embeddings") is int o)
                {
                    original = o;
                    factor = (double)maxPos / o; // transformers' DeepSeek-V3 rule: the ratio replaces factor
                }
                static double MScale(double scale, double m = 1) => scale <= 1 ? 1 : 0.1 * m * Math.Log(scale) + 1;
                double? mscale = node.Get<double?>("mscale"), mscaleAll = node.Get<double?>("mscale_all_dim");
                double attention = node.Get<double?>("attention_factor")
                    ?? (mscale is > 0 or < 0 && mscaleAll is > 0 or < 0 ? MScale(factor, mscale.Value) / MScale(factor, mscaleAll.Value) : MScale(factor));
                double betaFast = node.Get<double?>("beta_fast") is double bf && bf != 0 ? bf : 32;
                double betaSlow = node.Get<double?>("beta_slow") is double bs && bs != 0 ? bs : 1;
                return new Settings(theta, new RopeScaling
                {
                    RopeType = "yarn", Factor = factor, OriginalContext = original, AttentionFactor = attention,
                    BetaFast = betaFast, BetaSlow = betaSlow, Truncate = node.Bool("truncate", true),
                }, null, (int)Math.Ceiling(Math.Max(maxPos, original * given)));
            }
            case "longrope":
            {
                var shortFactor = Numbers(node, field, "short_factor", rotaryDim / 2, json);
                var longFactor = Numbers(node, field, "long_factor", rotaryDim / 2, json);
                // Phi-3 keeps the pretraining context at the top level; the factor is then the ratio of the two.
                int? original = json.Get<int?>("original_max_position_embeddings") ?? node.Get<int?>("original_max_position_embeddings");
                double factor = original is int o ? (double)maxPos / o : Factor();
                int context = original ?? maxPos;
                double attention = node.Get<double?>("attention_factor") ?? (factor <= 1 ? 1 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(context)));
                return new Settings(theta, new RopeScaling
                {
                    RopeType = "longrope", Factor = factor, OriginalContext = context, AttentionFactor = attention,
                    ShortFactor = shortFactor, LongFactor = longFactor,
                }, null, null);
            }
            default: throw new SharpLensInternalException($"rope type '{type}' passed validation but has no case here.");
        }
    }

    /// <summary>True when rope_parameters gives one set per layer type (transformers v5, Gemma 3).</summary>
    public static bool IsPerLayerType(HuggingFaceConfigJson json) =>
        json.Object("rope_parameters")?.Keys.Any(k => k is "full_attention" or "sliding_attention") == true;

    /// <summary>The object holding a layer type's scaling: v5's rope_parameters (flat, or per layer type), else v4's rope_scaling.</summary>
    static (HuggingFaceConfigJson? Node, string Field) ScalingObject(HuggingFaceConfigJson json, string layerType)
    {
        var parameters = json.Object("rope_parameters");
        var scaling = json.Object("rope_scaling");
        if (parameters is not null && scaling is not null && json.Raw("rope_parameters") != json.Raw("rope_scaling"))
            throw json.Problem($"rope_parameters ({json.Raw("rope_parameters")}) and rope_scaling ({json.Raw("rope_scaling")}) disagree; a config gives one of them.");
        if (parameters is null) return (scaling, "rope_scaling");
        if (parameters.Keys.Any(k => k is "full_attention" or "sliding_attention"))
        {
            foreach (var key in parameters.Keys)
                if (key is not ("full_attention" or "sliding_attention"))
                    throw json.Problem($"rope_parameters mixes per-layer-type entries with \"{key}\"; give either one set of parameters or one per layer type.");
            return (parameters.Object(layerType), $"rope_parameters.{layerType}");
        }
        return (parameters, "rope_parameters");
    }

    static double[] Numbers(HuggingFaceConfigJson node, string field, string key, int count, HuggingFaceConfigJson json)
    {
        var values = node.Doubles(key) ?? throw json.Problem($"{field}.{key} is missing; rope_type \"longrope\" needs {count} numbers there.");
        if (values.Count != count) throw json.Problem($"{field}.{key} has {values.Count} numbers; it needs one per rotary frequency, rotary_dim / 2 = {count}.");
        return [.. values];
    }
}
