using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpLens.Loading;

/// <summary>
/// A Hugging Face config.json, read field by field: a field of the wrong type or a missing required one throws
/// <see cref="CheckpointException"/> naming the file and the field.
/// </summary>
public sealed class HuggingFaceConfigJson
{
    readonly JsonObject _json;
    readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Fields set to null that a reader took as absent, with the default used instead (null: a default the reader computed).</summary>
    readonly Dictionary<string, string?> _nullAs = new(StringComparer.Ordinal);

    /// <summary>The file the text came from, for messages.</summary>
    public string Source { get; }
    public string? ModelType => Get<string>("model_type");

    public HuggingFaceConfigJson(string json, string source)
    {
        Source = source;
        try
        {
            _json = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("not a JSON object");
            _ = _json.Count; // a JsonObject reads its members lazily: a duplicated key would surface later, unnamed
        }
        catch (JsonException e) { throw new CheckpointException(source, null, $"config.json is not a JSON object ({e.Message})."); }
        catch (ArgumentException e) { throw new CheckpointException(source, null, $"config.json has a key twice ({e.Message}); keep one."); }
    }

    public static HuggingFaceConfigJson ReadFile(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No config.json at '{path}': a Hugging Face model folder needs one beside its weights.", path);
        return new HuggingFaceConfigJson(File.ReadAllText(path), path);
    }

    /// <summary>d_model and n_heads from their fields (d_head is their quotient); refused when n_heads does not divide d_model (0 heads: <see cref="Checked"/> names the field).</summary>
    public (int DModel, int NHeads) Heads(string dModelKey, string nHeadsKey)
    {
        int dModel = Int(dModelKey), nHeads = Int(nHeadsKey);
        if (dModel % nHeads != 0) throw Problem($"{dModelKey} = {dModel} is not divisible by {nHeadsKey} = {nHeads}.");
        return (dModel, nHeads);
    }

    /// <summary>Refuses a config.json whose model_type is set to another architecture's than <paramref name="modelType"/> (read directly, not through the family table).</summary>
    public void ExpectModelType(string modelType, string family)
    {
        if (ModelType is { } type && type != modelType)
            throw Problem($"model_type is \"{type}\"; this reader handles {family} (model_type \"{modelType}\") only.");
    }

    /// <summary>The field's value, or default when it is absent or null.</summary>
    public T? Get<T>(string key)
    {
        _read.Add(key);
        var node = _json[key];
        if (node is null)
        {
            if (_json.ContainsKey(key)) _nullAs.TryAdd(key, null); // an explicit null: Hugging Face's "use the default"
            return default;
        }
        try { return node.GetValue<T>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Problem($"\"{key}\" is {node.ToJsonString()}, not a {Nullable.GetUnderlyingType(typeof(T))?.Name ?? typeof(T).Name}.");
        }
    }

    public int Int(string key) => Get<int?>(key) ?? throw Problem(_json.ContainsKey(key)
        ? $"\"{key}\" is null; a {ModelType ?? "Hugging Face"} config.json needs a whole number there."
        : $"\"{key}\" is missing; a {ModelType ?? "Hugging Face"} config.json needs it.");

    /// <summary>The field's value; <paramref name="fallback"/> when it is absent or null (as Hugging Face's config classes read null), which messages about shapes then report.</summary>
    public int Int(string key, int fallback)
    {
        if (Get<int?>(key) is { } value) return value;
        if (_json.ContainsKey(key)) _nullAs[key] = fallback.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return fallback;
    }
    public double Double(string key, double fallback) => Get<double?>(key) ?? fallback;
    public bool Bool(string key, bool fallback) => Get<bool?>(key) ?? fallback;

    /// <summary>An activation function by its Hugging Face name ("gelu_new", "silu", ...); an unsupported one names the field.</summary>
    public Models.Activation Activation(string key, string fallback)
    {
        try { return Models.ModelConfig.ParseActivation(Get<string>(key) ?? fallback); }
        catch (ArgumentException e) { throw Problem(e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal)); }
    }

    /// <summary>A list of strings (such as layer_types), or null when absent.</summary>
    public IReadOnlyList<string>? Strings(string key)
    {
        _read.Add(key);
        var node = _json[key];
        if (node is null) return null;
        if (node is not JsonArray array || array.Any(n => n is null || n.GetValueKind() != JsonValueKind.String))
            throw Problem($"\"{key}\" is {node.ToJsonString()}, not a list of strings.");
        return [.. array.Select(n => n!.GetValue<string>())];
    }

    /// <summary>True when the field is present and not null (for objects such as rope_scaling).</summary>
    public bool IsSet(string key) { _read.Add(key); return _json[key] is not null; }

    /// <summary>A list of numbers (such as longrope's short_factor), or null when absent.</summary>
    public IReadOnlyList<double>? Doubles(string key)
    {
        _read.Add(key);
        var node = _json[key];
        if (node is null) return null;
        if (node is not JsonArray array || array.Any(n => n is null || n.GetValueKind() != JsonValueKind.Number))
            throw Problem($"\"{key}\" is {node.ToJsonString()}, not a list of numbers.");
        return [.. array.Select(n => n!.GetValue<double>())];
    }

    /// <summary>Every field name in the file, in order.</summary>
    public IEnumerable<string> Keys => _json.Select(kv => kv.Key);

    /// <summary>The fields no reader has asked for yet whose value is not null (what a family might be ignoring).</summary>
    public IEnumerable<string> UnreadKeys => _json.Where(kv => kv.Value is not null && !_read.Contains(kv.Key)).Select(kv => kv.Key);

    /// <summary>A nested object (such as rope_scaling) read the same way, its fields named "key.field" in messages; null when absent.</summary>
    public HuggingFaceConfigJson? Object(string key) { _read.Add(key); return _json[key] switch
    {
        null => null,
        JsonObject o => new HuggingFaceConfigJson(o.ToJsonString(), $"{Source} ({key})"),
        var other => throw Problem($"\"{key}\" is {other.ToJsonString()}, not an object."),
    }; }
    public string Raw(string key) { _read.Add(key); return _json[key]?.ToJsonString() ?? "null"; }

    public CheckpointException Problem(string problem) => new(Source, null, problem);

    /// <summary>
    /// The dimension fields this file sets, as "name = value" (for messages about the model's size and its weights'
    /// shapes); one set to null says so and what was read instead ("num_key_value_heads = null (the default: 4)").
    /// </summary>
    public string DimensionFields() => string.Join(", ", HfNames.Values.SelectMany(n => n).Distinct().Where(_json.ContainsKey)
        .Select(k => _json[k] switch
        {
            JsonValue v => $"{k} = {v.ToJsonString()}",
            null => $"{k} = null ({(_nullAs.TryGetValue(k, out var used) && used is not null ? $"the default: {used}" : "the default")})",
            _ => null,
        }).OfType<string>());

    /// <summary>The config.json fields each ModelConfig field is read from, for messages.</summary>
    static readonly Dictionary<string, string[]> HfNames = new()
    {
        ["n_layers"] = ["n_layer", "num_hidden_layers", "num_layers"], ["n_heads"] = ["n_head", "num_attention_heads"],
        ["d_model"] = ["n_embd", "hidden_size", "d_model"], ["d_head"] = ["head_dim", "n_embd", "hidden_size"],
        ["d_vocab"] = ["vocab_size"], ["n_ctx"] = ["n_positions", "n_ctx", "max_position_embeddings"],
        ["d_mlp"] = ["n_inner", "intermediate_size"], ["n_key_value_heads"] = ["num_key_value_heads"],
        ["rotary_dim"] = ["rotary_dim", "rotary_pct", "partial_rotary_factor", "head_dim"], ["window_size"] = ["sliding_window"],
        ["rotary_base"] = ["rope_theta", "rotary_emb_base"], ["attn_scores_soft_cap"] = ["attn_logit_softcapping"],
        ["output_logits_soft_cap"] = ["final_logit_softcapping"], ["attn_scale"] = ["query_pre_attn_scalar"],
    };

    /// <summary>
    /// Builds a model config from this file: a value that ModelConfig refuses, a head count of 0 that would divide by
    /// zero, or a product that overflows becomes a <see cref="CheckpointException"/> naming config.json and its field.
    /// </summary>
    public T Checked<T>(Func<T> build)
    {
        try { return build(); }
        catch (ArgumentException e)
        {
            string[] fields = e.ParamName is { } p && HfNames.TryGetValue(p, out var names) ? [.. names.Where(n => _json.ContainsKey(n))] : [];
            string message = e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
            throw Problem(fields.Length > 0 ? $"{string.Join(" / ", fields)}: {message} Fix this value in config.json." : $"{message} Fix this value in config.json.");
        }
        catch (DivideByZeroException)
        {
            var zero = new[] { "n_head", "num_attention_heads", "num_key_value_heads", "num_heads", "n_heads" }.Where(k => _json[k] is JsonValue v && v.ToJsonString() == "0");
            throw Problem($"{string.Join(" / ", zero.DefaultIfEmpty("a head count"))} is 0; a transformer needs at least one attention head.");
        }
        catch (OverflowException)
        {
            throw Problem("its dimensions multiply past what a 32-bit size can hold (e.g. hidden_size × intermediate_size); the values are corrupt.");
        }
    }
}
