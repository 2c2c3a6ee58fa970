using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SharpLens.Server;

/// <summary>One API key: who it belongs to and how much they may ask of the server.</summary>
public sealed record ApiKey
{
    [JsonPropertyName("key")] public string Key { get; init; } = "";
    [JsonPropertyName("user")] public string User { get; init; } = "";
    /// <summary>Runs this user may have queued or running at once.</summary>
    [JsonPropertyName("max_queued")] public int MaxQueued { get; init; } = 4;
    /// <summary>Runs this user may submit per minute (a sliding window).</summary>
    [JsonPropertyName("runs_per_minute")] public int RunsPerMinute { get; init; } = 600;
}

public sealed record ApiKeyFile
{
    [JsonPropertyName("keys")] public List<ApiKey> Keys { get; init; } = [];
}

[JsonSourceGenerationOptions(AllowTrailingCommas = true, ReadCommentHandling = JsonCommentHandling.Skip, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ApiKeyFile))]
public sealed partial class ServerJsonContext : JsonSerializerContext;

/// <summary>
/// The server's keys: looked up by SHA-256 with a constant-time comparison, so neither the lookup's timing nor a
/// memory dump of the table gives a key away. A keys file is JSON: <c>{ "keys": [ { "key": "...", "user": "alice",
/// "max_queued": 4, "runs_per_minute": 600 } ] }</c>.
/// </summary>
public sealed class ApiKeys
{
    readonly List<(byte[] Hash, ApiKey Key)> _keys;

    public ApiKeys(IEnumerable<ApiKey> keys)
    {
        _keys = [.. keys.Select(k => (Hash(k.Key), k with { Key = "" }))];
        foreach (var (_, k) in _keys)
            if (string.IsNullOrWhiteSpace(k.User)) throw new SharpLensException("Every API key needs a \"user\" name (quotas are per user).");
        if (_keys.Any(k => k.Hash.SequenceEqual(Hash(""))))
            throw new SharpLensException("An API key is empty; give every key at least 16 characters.");
    }

    public int Count => _keys.Count;

    public static ApiKeys Load(string path)
    {
        if (!File.Exists(path)) throw new SharpLensException($"Keys file '{path}' does not exist. It is JSON: {{ \"keys\": [ {{ \"key\": \"...\", \"user\": \"alice\" }} ] }}.");
        try
        {
            var file = JsonSerializer.Deserialize(File.ReadAllText(path), ServerJsonContext.Default.ApiKeyFile)
                       ?? throw new SharpLensException($"Keys file '{path}' is empty.");
            if (file.Keys.Any(k => k.Key.Length < 16)) throw new SharpLensException($"Keys file '{path}': every key must be at least 16 characters.");
            return new ApiKeys(file.Keys);
        }
        catch (JsonException e)
        {
            throw new SharpLensException($"Keys file '{path}' is not valid ({e.Path}): {e.Message.Split(" Path:")[0]}");
        }
    }

    /// <summary>The key's owner and limits, or null for an unknown key.</summary>
    public ApiKey? Find(string? presented)
    {
        if (string.IsNullOrEmpty(presented)) return null;
        var hash = Hash(presented);
        ApiKey? found = null;
        foreach (var (h, k) in _keys)
            if (CryptographicOperations.FixedTimeEquals(h, hash)) found = k;
        return found;
    }

    static byte[] Hash(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
