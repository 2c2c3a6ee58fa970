namespace SharpLens.Loading.Hub;

/// <summary>
/// Where models come from: the cache folder, the hub endpoint, the access token, whether to go online, and which
/// revision. <see cref="FromEnvironment()"/> reads the variables huggingface_hub reads, so both share one cache.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The hub cache (the folder holding <c>models--org--name</c>).</summary>
    public required string CacheFolder { get; init; }
    public string Endpoint { get; init; } = DefaultEndpoint;
    public string? Token { get; init; }
    public bool Offline { get; init; }
    /// <summary>A branch or tag (recorded under refs/) or a 40-hex commit hash.</summary>
    public string Revision { get; init; } = "main";

    /// <summary>
    /// HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub (XDG_CACHE_HOME replaces ~/.cache);
    /// HF_ENDPOINT; HF_TOKEN, else the token file HF_HOME/token; HF_HUB_OFFLINE=1/true/yes/on.
    /// </summary>
    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    public static HubOptions FromEnvironment(Func<string, string?> variable)
    {
        static string? Set(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
        string home = Set(variable("HF_HOME")) ?? Path.Combine(
            Set(variable("XDG_CACHE_HOME")) ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");
        string? token = Set(variable("HF_TOKEN"));
        string tokenFile = Path.Combine(home, "token");
        if (token is null && File.Exists(tokenFile)) token = Set(File.ReadAllText(tokenFile));
        return new HubOptions
        {
            CacheFolder = Set(variable("HF_HUB_CACHE")) ?? Path.Combine(home, "hub"),
            Endpoint = (Set(variable("HF_ENDPOINT")) ?? DefaultEndpoint).TrimEnd('/'),
            Token = token,
            Offline = Set(variable("HF_HUB_OFFLINE"))?.ToLowerInvariant() is "1" or "true" or "yes" or "on",
        };
    }
}
