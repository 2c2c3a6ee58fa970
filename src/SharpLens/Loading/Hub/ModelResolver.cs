using System.Text.Json;
using SharpLens.Loading.Pickle;

namespace SharpLens.Loading.Hub;

/// <summary>
/// Turns what a user types — a folder, a file in one, a known name (<c>gpt2</c>, <c>pythia-70m</c>) or a repo id
/// (<c>org/name</c>) — into a local model folder: the folder itself, else a complete snapshot in the Hugging Face
/// cache (no network at all), else a download into that cache.
/// </summary>
public static class ModelResolver
{
    /// <summary>Files a model may have beside its weights; a 404 for any of them is fine (and remembered in .no_exist).</summary>
    public static readonly IReadOnlyList<string> OptionalFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "vocab.txt"];

    const string ConfigFile = "config.json";
    static readonly string[] WeightChoices =
        [SafeTensorsCheckpoint.SingleFile, SafeTensorsCheckpoint.IndexFile, PyTorchCheckpoint.SingleFile, PyTorchCheckpoint.IndexFile];

    /// <summary>Blocking form of <see cref="ResolveFolderAsync"/>, for constructors and scripts.</summary>
    public static string ResolveFolder(string nameOrPath, HubOptions? options = null, IProgress<DownloadProgress>? progress = null) =>
        Task.Run(() => ResolveFolderAsync(nameOrPath, options, progress)).GetAwaiter().GetResult();

    public static async Task<string> ResolveFolderAsync(string nameOrPath, HubOptions? options = null, IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        if (Directory.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        if (File.Exists(nameOrPath)) return Path.GetDirectoryName(Path.GetFullPath(nameOrPath))!;
        if (!ModelRegistry.TryGetRepoId(nameOrPath, out _) && !ModelRegistry.LooksLikeRepoId(nameOrPath) && LooksLikePath(nameOrPath))
            throw new DirectoryNotFoundException($"No model folder at '{Path.GetFullPath(nameOrPath)}'. Give an existing folder, a known name (e.g. gpt2) or an org/name repo id.");
        string repoId = ModelRegistry.RepoIdFor(nameOrPath);
        options ??= HubOptions.FromEnvironment();
        var cache = new HubCache(options.CacheFolder, repoId);

        string? commit = cache.CommitFor(options.Revision);
        if (commit is not null && Missing(cache, commit, requireOptional: !options.Offline).Count == 0) return cache.SnapshotFolder(commit);
        if (options.Offline)
            throw new HubOfflineException(repoId, commit is null ? [ConfigFile, WeightsDescription] : Missing(cache, commit, requireOptional: false), cache.RepoFolder);

        using var client = new HubClient(options);
        return await DownloadAsync(client, cache, options.Revision, progress, cancel).ConfigureAwait(false);
    }

    static string WeightsDescription => $"weights ({string.Join(" or ", WeightChoices)})";

    static bool LooksLikePath(string text) =>
        Path.IsPathRooted(text) || text.StartsWith('.') || text.StartsWith('~') || text.Contains(Path.DirectorySeparatorChar) || text.Contains('/');

    /// <summary>What a snapshot still lacks: config.json, a complete set of weights, and (online) an answer for each optional file.</summary>
    static List<string> Missing(HubCache cache, string commit, bool requireOptional)
    {
        var missing = new List<string>();
        if (!cache.Has(commit, ConfigFile)) missing.Add(ConfigFile);
        bool weights = WeightChoices.Any(w => cache.Has(commit, w) && (!w.EndsWith(".index.json", StringComparison.Ordinal)
            || ShardsOf(cache.SnapshotFile(commit, w), cache.RepoId).All(s => cache.Has(commit, s))));
        if (!weights) missing.Add(WeightsDescription);
        if (requireOptional) missing.AddRange(OptionalFiles.Where(f => !cache.Has(commit, f) && !cache.KnownMissing(commit, f)));
        return missing;
    }

    static async Task<string> DownloadAsync(HubClient client, HubCache cache, string revision, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        string repoId = cache.RepoId;
        var config = await client.HeadAsync(repoId, revision, ConfigFile, cancel).ConfigureAwait(false)
            ?? throw new HubDownloadException(repoId, ConfigFile, $"revision '{revision}' has no config.json, so it is not a transformers model repo.");
        // Every further file is fetched at the commit config.json came from, so the snapshot is consistent.
        string commit = config.Commit;
        await FetchAsync(client, cache, ConfigFile, config, progress, cancel).ConfigureAwait(false);

        bool gotWeights = false;
        foreach (string choice in WeightChoices)
        {
            if (cache.Has(commit, choice)) { gotWeights = true; break; }
            var meta = await client.HeadAsync(repoId, commit, choice, cancel).ConfigureAwait(false);
            if (meta is null) { cache.MarkMissing(commit, choice); continue; }
            await FetchAsync(client, cache, choice, meta, progress, cancel).ConfigureAwait(false);
            if (choice.EndsWith(".index.json", StringComparison.Ordinal))
                foreach (string shard in ShardsOf(cache.SnapshotFile(commit, choice), repoId))
                {
                    if (cache.Has(commit, shard)) continue;
                    var shardMeta = await client.HeadAsync(repoId, commit, shard, cancel).ConfigureAwait(false)
                        ?? throw new HubDownloadException(repoId, shard, $"{choice} lists this shard but the repo does not have it.");
                    await FetchAsync(client, cache, shard, shardMeta, progress, cancel).ConfigureAwait(false);
                }
            gotWeights = true;
            break;
        }
        if (!gotWeights) throw new HubDownloadException(repoId, null, $"commit {commit} has none of {string.Join(", ", WeightChoices)}.");

        foreach (string optional in OptionalFiles)
        {
            if (cache.Has(commit, optional) || cache.KnownMissing(commit, optional)) continue;
            var meta = await client.HeadAsync(repoId, commit, optional, cancel).ConfigureAwait(false);
            if (meta is null) cache.MarkMissing(commit, optional);
            else await FetchAsync(client, cache, optional, meta, progress, cancel).ConfigureAwait(false);
        }
        cache.WriteRef(revision, commit);
        return cache.SnapshotFolder(commit);
    }

    static async Task FetchAsync(HubClient client, HubCache cache, string file, HubFileMetadata meta, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        await client.DownloadAsync(cache, file, meta, progress, cancel).ConfigureAwait(false);
        cache.Link(meta.Commit, file, meta.Etag);
    }

    /// <summary>The shard files a weight index lists (its weight_map values), each a plain file name.</summary>
    static IEnumerable<string> ShardsOf(string indexPath, string repoId)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new HubDownloadException(repoId, Path.GetFileName(indexPath), "the index has no weight_map object.");
            var shards = map.EnumerateObject().Select(e => e.Value.GetString() ?? "").Distinct().ToList();
            foreach (var shard in shards.Where(s => s.Length == 0 || s.Contains('/') || s.Contains('\\') || s.Contains("..", StringComparison.Ordinal)))
                throw new HubDownloadException(repoId, Path.GetFileName(indexPath), $"the index names the shard '{shard}', which is not a plain file name.");
            return shards;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw new HubDownloadException(repoId, Path.GetFileName(indexPath), $"the index is not valid JSON ({e.Message}).", e);
        }
    }
}
