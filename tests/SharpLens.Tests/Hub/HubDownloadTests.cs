using System.Text.Json;
using SharpLens.Loading.Hub;
using SharpLens.Models;
using SharpLens.Tests.Loading;
using TorchSharp;
using Xunit.Abstractions;
using static SharpLens.Tests.Loading.LoadingTestKit;

namespace SharpLens.Tests.Hub;

public class HubDownloadTests(ITestOutputHelper output)
{
    const string RepoId = "test-org/gpt2-tiny";

    static string FixtureFile(string folder, string file) => Path.Combine(Fixture(folder), file);

    /// <summary>The gpt2-tiny-tied fixture as a hub repo: config.json a small file, model.safetensors an LFS file.</summary>
    static FakeRepo Gpt2Repo(string? token = null, string weights = "model.safetensors", string folder = "gpt2-tiny-tied")
    {
        var repo = new FakeRepo { RequiredToken = token };
        repo.Files["config.json"] = File.ReadAllBytes(FixtureFile(folder, "config.json"));
        repo.Files[weights] = File.ReadAllBytes(FixtureFile(folder, weights));
        repo.Lfs.Add(weights);
        return repo;
    }

    static HubOptions Options(FakeHub hub, TempFolder cache, string? token = null, bool offline = false) =>
        new() { CacheFolder = cache.Path, Endpoint = hub.Endpoint, Token = token, Offline = offline };

    static double GoldenLogitDiff(HookedTransformer model)
    {
        using var scope = torch.NewDisposeScope();
        using var golden = JsonDocument.Parse(File.ReadAllText(FixtureFile("gpt2-tiny-tied", "golden.json")));
        var entry = golden.RootElement.GetProperty("batch");
        var rows = entry.GetProperty("tokens").EnumerateArray().Select(r => r.EnumerateArray().Select(t => t.GetInt64()).ToArray()).ToArray();
        var tokens = torch.tensor(rows.SelectMany(r => r).ToArray()).reshape(rows.Length, rows[0].Length);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var expected = torch.tensor(entry.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray()).reshape(shape);
        return MaxAbsDiff(model.Run(tokens), expected);
    }

    [Fact]
    public void Downloaded_model_loads_with_the_fixtures_golden_logits()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        hub.Repos[RepoId] = Gpt2Repo();
        var reports = new List<DownloadProgress>();
        string folder = ModelResolver.ResolveFolder(RepoId, Options(hub, cache), new SynchronousProgress<DownloadProgress>(reports.Add));

        using var model = HookedTransformer.FromPretrained(folder, processing: WeightProcessingOptions.None);
        double diff = GoldenLogitDiff(model);
        output.WriteLine($"downloaded gpt2-tiny-tied vs golden: max |diff| = {diff:E2}");
        Assert.True(diff < 1e-4, $"max |logit diff| = {diff:E2}");
        long size = new FileInfo(FixtureFile("gpt2-tiny-tied", "model.safetensors")).Length;
        Assert.Contains(reports, r => r.File == "model.safetensors" && r.BytesDone == size && r.TotalBytes == size);
    }

    [Fact]
    public void Cache_is_laid_out_as_huggingface_hub_lays_it_out()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        var repo = hub.Repos[RepoId] = Gpt2Repo();
        string folder = ModelResolver.ResolveFolder(RepoId, Options(hub, cache));

        string repoFolder = Path.Combine(cache.Path, "models--test-org--gpt2-tiny");
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(repoFolder, "refs", "main"))); // no newline
        Assert.Equal(Path.Combine(repoFolder, "snapshots", repo.Commit), folder);
        foreach (var (file, etag) in new[] { ("config.json", FakeRepo.GitSha1(repo.Files["config.json"])), ("model.safetensors", FakeRepo.Sha256(repo.Files["model.safetensors"])) })
        {
            var link = new FileInfo(Path.Combine(folder, file));
            Assert.Equal($"../../blobs/{etag}", link.LinkTarget);
            Assert.Equal(repo.Files[file], File.ReadAllBytes(Path.Combine(repoFolder, "blobs", etag)));
        }
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(repoFolder, "blobs"), "*.incomplete"));
        // The optional files this repo lacks are remembered as huggingface_hub remembers them.
        Assert.True(File.Exists(Path.Combine(repoFolder, ".no_exist", repo.Commit, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(repoFolder, ".no_exist", repo.Commit, "vocab.json")));
        // Everything after config.json is asked for at the commit config.json came from.
        Assert.All(hub.Requests.Where(r => r.Path.Contains("/resolve/") && !r.Path.EndsWith("/config.json")), r => Assert.Contains($"/resolve/{repo.Commit}/", r.Path));
    }

    [Fact]
    public void Second_resolution_is_served_from_the_cache_with_zero_requests()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        hub.Repos[RepoId] = Gpt2Repo();
        string first = ModelResolver.ResolveFolder(RepoId, Options(hub, cache));
        int before = hub.Requests.Count;
        Assert.True(before > 0);
        string second = ModelResolver.ResolveFolder(RepoId, Options(hub, cache));
        string offline = ModelResolver.ResolveFolder(RepoId, Options(hub, cache, offline: true));
        Assert.Equal(first, second);
        Assert.Equal(first, offline);
        Assert.Equal(before, hub.Requests.Count);
    }

    [Fact]
    public void Interrupted_transfer_resumes_with_a_range_request()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        var repo = hub.Repos[RepoId] = Gpt2Repo();
        byte[] weights = repo.Files["model.safetensors"];
        string sha = FakeRepo.Sha256(weights);
        hub.DropAfter[sha] = 40_000;

        var e = Assert.Throws<HubDownloadException>(() => ModelResolver.ResolveFolder(RepoId, Options(hub, cache)));
        Assert.Contains("calling again resumes", e.Message);
        string partial = Path.Combine(cache.Path, "models--test-org--gpt2-tiny", "blobs", sha + ".incomplete");
        Assert.Equal(40_000, new FileInfo(partial).Length);
        Assert.False(File.Exists(Path.Combine(cache.Path, "models--test-org--gpt2-tiny", "refs", "main")), "a failed download must not record the ref");

        string folder = ModelResolver.ResolveFolder(RepoId, Options(hub, cache));
        Assert.Contains(hub.Requests, r => r.Method == "GET" && r.Path == $"/cdn/{sha}" && r.Range == "bytes=40000-");
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.False(File.Exists(partial));
    }

    [Fact]
    public void Corrupted_download_is_rejected_and_not_left_in_place()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        var repo = hub.Repos[RepoId] = Gpt2Repo();
        byte[] bad = (byte[])repo.Files["model.safetensors"].Clone();
        bad[^100] ^= 0xFF; // same length, one byte flipped
        repo.Corrupt["model.safetensors"] = bad;

        var e = Assert.Throws<HubIntegrityException>(() => ModelResolver.ResolveFolder(RepoId, Options(hub, cache)));
        Assert.Equal("model.safetensors", e.File);
        Assert.Contains(FakeRepo.Sha256(repo.Files["model.safetensors"]), e.Message);
        string repoFolder = Path.Combine(cache.Path, "models--test-org--gpt2-tiny");
        Assert.Equal([FakeRepo.GitSha1(repo.Files["config.json"])], Directory.EnumerateFiles(Path.Combine(repoFolder, "blobs")).Select(Path.GetFileName));
        Assert.False(File.Exists(Path.Combine(repoFolder, "snapshots", repo.Commit, "model.safetensors")));
    }

    [Fact]
    public void Gated_repo_needs_the_token_which_never_goes_to_the_cdn()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        hub.Repos[RepoId] = Gpt2Repo(token: "hf_secret");

        var refused = Assert.Throws<HubAccessException>(() => ModelResolver.ResolveFolder(RepoId, Options(hub, cache)));
        Assert.Equal(401, refused.Status);
        Assert.Contains("HF_TOKEN", refused.Message);
        Assert.Contains(RepoId, refused.Message);

        int refusedRequests = hub.Requests.Count;
        Assert.All(hub.Requests, r => Assert.Null(r.Authorization));
        string folder = ModelResolver.ResolveFolder(RepoId, Options(hub, cache, token: "hf_secret"));
        Assert.True(File.Exists(Path.Combine(folder, "model.safetensors")));
        var withToken = hub.Requests.Skip(refusedRequests).ToList();
        Assert.All(withToken.Where(r => r.Path.Contains("/resolve/")), r => Assert.Equal("Bearer hf_secret", r.Authorization));
        Assert.Contains(withToken, r => r.Path.StartsWith("/cdn/"));
        Assert.All(withToken.Where(r => r.Path.StartsWith("/cdn/")), r => Assert.Null(r.Authorization));
    }

    [Fact]
    public void Offline_mode_names_the_repo_missing_files_and_cache_path_and_makes_no_request()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        hub.Repos[RepoId] = Gpt2Repo();
        var e = Assert.Throws<HubOfflineException>(() => ModelResolver.ResolveFolder(RepoId, Options(hub, cache, offline: true)));
        Assert.Contains(RepoId, e.Message);
        Assert.Contains("config.json", e.Missing);
        Assert.Contains(Path.Combine(cache.Path, "models--test-org--gpt2-tiny"), e.Message);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public void Repo_with_only_pytorch_model_bin_downloads_and_loads_with_the_golden_logits()
    {
        using var hub = new FakeHub();
        using var cache = new TempFolder();
        var repo = hub.Repos[RepoId] = Gpt2Repo(weights: "pytorch_model.bin", folder: Path.Combine("pickle", "gpt2-tiny-tied-bin"));
        string folder = ModelResolver.ResolveFolder(RepoId, Options(hub, cache));
        Assert.True(File.Exists(Path.Combine(cache.Path, "models--test-org--gpt2-tiny", ".no_exist", repo.Commit, "model.safetensors")));
        using var model = HookedTransformer.FromPretrained(folder, processing: WeightProcessingOptions.None);
        Assert.True(GoldenLogitDiff(model) < 1e-4);
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, so reports could arrive late).</summary>
    sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        readonly object _gate = new();
        public void Report(T value) { lock (_gate) report(value); }
    }
}
