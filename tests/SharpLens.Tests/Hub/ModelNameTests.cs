using SharpLens.Loading.Hub;
using SharpLens.Tests.Loading;

namespace SharpLens.Tests.Hub;

public class ModelNameTests
{
    [Theory]
    [InlineData("gpt2", "openai-community/gpt2")]
    [InlineData("GPT2-XL", "openai-community/gpt2-xl")]
    [InlineData("pythia-1.4b-deduped", "EleutherAI/pythia-1.4b-deduped")]
    [InlineData("Pythia-70M", "EleutherAI/pythia-70m")]
    [InlineData("llama-3.2-1b", "meta-llama/Llama-3.2-1B")]
    [InlineData("Llama-2-7b", "meta-llama/Llama-2-7b-hf")]
    [InlineData("mistral-7b", "mistralai/Mistral-7B-v0.1")]
    [InlineData("qwen2.5-0.5b", "Qwen/Qwen2.5-0.5B")]
    [InlineData("gemma-2-2b", "google/gemma-2-2b")]
    [InlineData("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")]
    [InlineData("bert-base-uncased", "google-bert/bert-base-uncased")]
    [InlineData("someone/their-model", "someone/their-model")]
    public void Names_and_repo_ids_map_to_repo_ids_case_insensitively(string name, string repoId) =>
        Assert.Equal(repoId, ModelRegistry.RepoIdFor(name));

    [Fact]
    public void Unknown_name_suggests_the_closest_names_and_the_other_ways_to_name_a_model()
    {
        var e = Assert.Throws<UnknownModelException>(() => ModelRegistry.RepoIdFor("pythia-70"));
        Assert.Contains("pythia-70m", e.ClosestNames);
        Assert.Contains("folder", e.Message);
        Assert.Contains("org/name", e.Message);
        Assert.Equal("gpt2-xl", ModelRegistry.Closest("gtp2-xl", 1)[0]);
    }

    [Fact]
    public void Cache_folder_comes_from_HF_HUB_CACHE_then_HF_HOME_then_the_home_cache()
    {
        using var home = new TempFolder();
        File.WriteAllText(home.File("token"), "hf_from_file\n");
        var env = new Dictionary<string, string> { ["HF_HOME"] = home.Path, ["HF_HUB_OFFLINE"] = "1", ["HF_ENDPOINT"] = "http://mirror.example/" };
        var fromHome = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal(Path.Combine(home.Path, "hub"), fromHome.CacheFolder);
        Assert.Equal("hf_from_file", fromHome.Token);
        Assert.True(fromHome.Offline);
        Assert.Equal("http://mirror.example", fromHome.Endpoint);

        env["HF_HUB_CACHE"] = "/somewhere/hub";
        env["HF_TOKEN"] = "hf_env";
        var explicitCache = HubOptions.FromEnvironment(k => env.GetValueOrDefault(k));
        Assert.Equal("/somewhere/hub", explicitCache.CacheFolder);
        Assert.Equal("hf_env", explicitCache.Token);

        var defaults = HubOptions.FromEnvironment(_ => null);
        Assert.Equal(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub"), defaults.CacheFolder);
        Assert.Equal(HubOptions.DefaultEndpoint, defaults.Endpoint);
        Assert.False(defaults.Offline);
    }

    [Fact]
    public void A_missing_folder_path_is_not_mistaken_for_a_model_name()
    {
        Assert.Throws<DirectoryNotFoundException>(() => ModelResolver.ResolveFolder("./no/such/model-folder"));
    }
}
