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

    /// <summary>The file the text came from, for messages.</summary>
    public string Source { get; }
    public string? ModelType => Get<string>("model_type");

    public HuggingFaceConfigJson(string json, string source)
    {
        Source = source;
        try { _json = JsonNode.Parse(json) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new CheckpointException(source, null, $"config.json is not a JSON object ({e.Message})."); }
    }

    public static HuggingFaceConfigJson ReadFile(string path)
    {
        path = Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"No config.json at '{path}': a Hugging Face model folder needs one beside its weights.", path);
        return new HuggingFaceConfigJson(File.ReadAllText(path), path);
    }

    /// <summary>The field's value, or default when it is absent or null.</summary>
    public T? Get<T>(string key)
    {
        _read.Add(key);
        var node = _json[key];
        if (node is null) return default;
        try { return node.GetValue<T>(); }
        catch (Exception e) when (e is FormatException or InvalidOperationException)
        {
            throw Problem($"\"{key}\" is {node.ToJsonString()}, not a {Nullable.GetUnderlyingType(typeof(T))?.Name ?? typeof(T).Name}.");
        }
    }

    public int Int(string key) => Get<int?>(key) ?? throw Problem($"\"{key}\" is missing; a {ModelType ?? "Hugging Face"} config.json needs it.");
    public int Int(string key, int fallback) => Get<int?>(key) ?? fallback;
    public double Double(string key, double fallback) => Get<double?>(key) ?? fallback;
    public bool Bool(string key, bool fallback) => Get<bool?>(key) ?? fallback;

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
}
