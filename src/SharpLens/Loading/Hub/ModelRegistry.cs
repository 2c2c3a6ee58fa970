namespace SharpLens.Loading.Hub;

/// <summary>
/// Short model names → Hugging Face repo ids, looked up case-insensitively, as TransformerLens's official model list
/// does. A name that is not here can still be given as an <c>org/name</c> repo id or as a local folder.
/// </summary>
public static class ModelRegistry
{
    static readonly Dictionary<string, string> Names = Build();

    static Dictionary<string, string> Build()
    {
        var names = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        void Add(string repo, params string[] aliases)
        {
            names[repo.Split('/')[^1]] = repo;
            foreach (var alias in aliases) names[alias] = repo;
        }
        Add("openai-community/gpt2", "gpt2-small");
        Add("openai-community/gpt2-medium");
        Add("openai-community/gpt2-large");
        Add("openai-community/gpt2-xl");
        Add("distilbert/distilgpt2");
        foreach (var size in new[] { "14m", "31m", "70m", "160m", "410m", "1b", "1.4b", "2.8b", "6.9b", "12b" })
        {
            Add($"EleutherAI/pythia-{size}");
            if (size != "14m" && size != "31m") Add($"EleutherAI/pythia-{size}-deduped");
        }
        Add("meta-llama/Llama-2-7b-hf", "Llama-2-7b", "llama-2-7b");
        Add("meta-llama/Llama-3.2-1B", "llama-3.2-1b");
        Add("meta-llama/Llama-3.2-3B");
        Add("meta-llama/Llama-3.1-8B", "Meta-Llama-3.1-8B");
        Add("mistralai/Mistral-7B-v0.1", "Mistral-7B", "mistral-7b");
        Add("Qwen/Qwen2.5-0.5B");
        Add("Qwen/Qwen2.5-1.5B");
        Add("Qwen/Qwen2.5-7B");
        Add("google/gemma-2b");
        Add("google/gemma-7b");
        Add("google/gemma-2-2b");
        Add("google/gemma-2-9b");
        Add("google-bert/bert-base-uncased");
        Add("sentence-transformers/all-MiniLM-L6-v2", "MiniLM-L6", "all-minilm");
        Add("roneneldan/TinyStories-1M", "tiny-stories-1M");
        Add("roneneldan/TinyStories-33M", "tiny-stories-33M");
        foreach (var entry in ModelCatalog.Entries) Add(entry.HubId, [entry.Name, .. entry.Aliases]); // model zoo 2 (sharplens models)
        return names;
    }

    /// <summary>Every name and alias, with the repo it stands for.</summary>
    public static IReadOnlyDictionary<string, string> All => Names;

    public static bool TryGetRepoId(string name, out string repoId) => Names.TryGetValue(name, out repoId!);

    /// <summary>The repo id for a known name, or the argument itself when it is already <c>org/name</c>.</summary>
    public static string RepoIdFor(string nameOrRepoId)
    {
        if (Names.TryGetValue(nameOrRepoId, out var repo)) return repo;
        if (LooksLikeRepoId(nameOrRepoId)) return nameOrRepoId;
        throw new UnknownModelException(nameOrRepoId, Closest(nameOrRepoId));
    }

    /// <summary><c>org/name</c>, each part made of letters, digits, '-', '_' and '.' (Hugging Face's rule for repo ids).</summary>
    public static bool LooksLikeRepoId(string text)
    {
        var parts = text.Split('/');
        return parts.Length == 2 && parts.All(p => p.Length is > 0 and <= 96 && !p.StartsWith('.') && !p.Contains("..", StringComparison.Ordinal)
            && p.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'));
    }

    /// <summary>The few known names, and <paramref name="alsoConsider"/> (e.g. built-in organisms), nearest by edit distance (case ignored).</summary>
    public static IReadOnlyList<string> Closest(string name, int count = 3, IEnumerable<string>? alsoConsider = null) =>
        [.. Names.Keys.Concat(alsoConsider ?? []).Distinct().OrderBy(k => Hooks.HookNotFoundException.EditDistance(name.ToLowerInvariant(), k.ToLowerInvariant())).ThenBy(k => k, StringComparer.Ordinal).Take(count)];
}

/// <summary>A model name that is neither a known name, an <c>org/name</c> repo id, nor an existing folder.</summary>
public sealed class UnknownModelException(string name, IReadOnlyList<string> closest)
    : SharpLensArgumentException("model", $"'{name}' is not a model SharpLens knows, a folder, or an org/name repo id. Closest names: {string.Join(", ", closest)}. " +
        "Give a local folder path, or a Hugging Face repo id such as 'EleutherAI/pythia-70m'.")
{
    public string Name { get; } = name;
    public IReadOnlyList<string> ClosestNames { get; } = closest;
}
