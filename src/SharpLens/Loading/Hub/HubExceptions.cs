namespace SharpLens.Loading.Hub;

/// <summary>Offline (HF_HUB_OFFLINE=1) and the cache lacks files the model needs: names the repo, the files and the cache folder.</summary>
public sealed class HubOfflineException(string repoId, IReadOnlyList<string> missing, string cacheFolder)
    : SharpLensException($"Hugging Face repo '{repoId}' is not complete in the cache and offline mode is on (HF_HUB_OFFLINE): missing " +
        $"{string.Join(", ", missing)} under {cacheFolder}. Unset HF_HUB_OFFLINE to download them once, or give a local model folder.")
{
    public string RepoId { get; } = repoId;
    public IReadOnlyList<string> Missing { get; } = missing;
    public string CacheFolder { get; } = cacheFolder;
}

/// <summary>The hub refused access (HTTP 401/403): a gated or private repo, or a wrong token.</summary>
public sealed class HubAccessException(string repoId, string file, int status, bool hadToken)
    : SharpLensException($"The Hugging Face hub refused '{file}' of '{repoId}' (HTTP {status}). " + (hadToken
        ? "The token in HF_TOKEN was not accepted: check it is valid and that you accepted the model's licence on its hub page."
        : "The repo is gated or private: accept its licence on the hub page, then set HF_TOKEN to an access token (or write it to $HF_HOME/token)."))
{
    public string RepoId { get; } = repoId;
    public int Status { get; } = status;
}

/// <summary>A download that failed: an HTTP error, a dropped connection (the partial file is kept, so calling again resumes), no weights in the repo.</summary>
public sealed class HubDownloadException(string repoId, string? file, string problem, Exception? inner = null)
    : SharpLensException(file is null ? $"Hugging Face repo '{repoId}': {problem}" : $"Hugging Face repo '{repoId}', file '{file}': {problem}", inner)
{
    public string RepoId { get; } = repoId;
    public string? File { get; } = file;
}

/// <summary>Downloaded bytes that do not match what the hub advertised (sha256 or size); the bad file has been deleted.</summary>
public sealed class HubIntegrityException(string repoId, string file, string expected, string actual)
    : SharpLensException($"Hugging Face repo '{repoId}', file '{file}': the download does not match the hub's checksum (expected {expected}, got {actual}). " +
        "The corrupt file was deleted; try again, and check any proxy or HF_ENDPOINT mirror in between.")
{
    public string RepoId { get; } = repoId;
    public string File { get; } = file;
}
