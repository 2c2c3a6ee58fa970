namespace SharpLens.Loading.Hub;

/// <summary>One registry entry as <c>sharplens models</c> lists it.</summary>
/// <param name="Name">the short name (also accepted: the repo's own name and the aliases)</param>
/// <param name="Family">config.json's model_type</param>
/// <param name="Parameters">the parameter count as its authors state it</param>
/// <param name="HubId">the Hugging Face repo id</param>
public sealed record ModelCatalogEntry(string Name, string Family, string Parameters, string HubId, params string[] Aliases);

/// <summary>The checkpoints SharpLens knows by name: family, size and where they live on the Hugging Face hub.</summary>
public static class ModelCatalog
{
    public static IReadOnlyList<ModelCatalogEntry> Entries { get; } =
    [
        new("gpt2", "gpt2", "124M", "openai-community/gpt2", "gpt2-small"),
        new("gpt2-medium", "gpt2", "355M", "openai-community/gpt2-medium"),
        new("gpt2-large", "gpt2", "774M", "openai-community/gpt2-large"),
        new("gpt2-xl", "gpt2", "1.5B", "openai-community/gpt2-xl"),
        new("distilgpt2", "gpt2", "82M", "distilbert/distilgpt2"),
        .. new[] { ("14m", "14M"), ("31m", "31M"), ("70m", "70M"), ("160m", "160M"), ("410m", "410M"), ("1b", "1.0B"), ("1.4b", "1.4B"), ("2.8b", "2.8B"), ("6.9b", "6.9B"), ("12b", "12B") }
            .SelectMany(s => s.Item1 is "14m" or "31m"
                ? new[] { new ModelCatalogEntry($"pythia-{s.Item1}", "gpt_neox", s.Item2, $"EleutherAI/pythia-{s.Item1}") }
                : [new ModelCatalogEntry($"pythia-{s.Item1}", "gpt_neox", s.Item2, $"EleutherAI/pythia-{s.Item1}"),
                   new ModelCatalogEntry($"pythia-{s.Item1}-deduped", "gpt_neox", s.Item2, $"EleutherAI/pythia-{s.Item1}-deduped")]),
        new("Llama-2-7b-hf", "llama", "6.7B", "meta-llama/Llama-2-7b-hf", "Llama-2-7b", "llama-2-7b"),
        new("Llama-3.2-1B", "llama", "1.2B", "meta-llama/Llama-3.2-1B", "llama-3.2-1b"),
        new("Llama-3.2-3B", "llama", "3.2B", "meta-llama/Llama-3.2-3B"),
        new("Llama-3.1-8B", "llama", "8.0B", "meta-llama/Llama-3.1-8B", "Meta-Llama-3.1-8B"),
        new("Mistral-7B-v0.1", "mistral", "7.2B", "mistralai/Mistral-7B-v0.1", "Mistral-7B", "mistral-7b"),
        new("Mixtral-8x7B-v0.1", "mixtral", "46.7B (12.9B active)", "mistralai/Mixtral-8x7B-v0.1", "Mixtral-8x7B", "mixtral-8x7b"),
        new("Mixtral-8x7B-Instruct-v0.1", "mixtral", "46.7B (12.9B active)", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        new("Qwen2.5-0.5B", "qwen2", "0.49B", "Qwen/Qwen2.5-0.5B"),
        new("Qwen2.5-1.5B", "qwen2", "1.5B", "Qwen/Qwen2.5-1.5B"),
        new("Qwen2.5-7B", "qwen2", "7.6B", "Qwen/Qwen2.5-7B"),
        new("Qwen3-0.6B", "qwen3", "0.6B", "Qwen/Qwen3-0.6B", "qwen3-0.6b"),
        new("Qwen3-1.7B", "qwen3", "1.7B", "Qwen/Qwen3-1.7B", "qwen3-1.7b"),
        new("Qwen3-4B", "qwen3", "4.0B", "Qwen/Qwen3-4B", "qwen3-4b"),
        new("Qwen3-8B", "qwen3", "8.2B", "Qwen/Qwen3-8B", "qwen3-8b"),
        new("Qwen3-14B", "qwen3", "14.8B", "Qwen/Qwen3-14B", "qwen3-14b"),
        new("gemma-2b", "gemma", "2.5B", "google/gemma-2b"),
        new("gemma-7b", "gemma", "8.5B", "google/gemma-7b"),
        new("gemma-2-2b", "gemma2", "2.6B", "google/gemma-2-2b"),
        new("gemma-2-9b", "gemma2", "9.2B", "google/gemma-2-9b"),
        new("gemma-3-1b-pt", "gemma3_text", "1.0B", "google/gemma-3-1b-pt", "gemma-3-1b"),
        new("gemma-3-1b-it", "gemma3_text", "1.0B", "google/gemma-3-1b-it"),
        new("gemma-3-270m", "gemma3_text", "270M", "google/gemma-3-270m"),
        new("gemma-3-4b-pt", "gemma3", "4.3B (text 3.9B)", "google/gemma-3-4b-pt", "gemma-3-4b"),
        new("gemma-3-12b-pt", "gemma3", "12.2B", "google/gemma-3-12b-pt", "gemma-3-12b"),
        new("Phi-3-mini-4k-instruct", "phi3", "3.8B", "microsoft/Phi-3-mini-4k-instruct", "Phi-3-mini", "phi-3-mini"),
        new("Phi-3-mini-128k-instruct", "phi3", "3.8B", "microsoft/Phi-3-mini-128k-instruct", "Phi-3-mini-128k"),
        new("Phi-3.5-mini-instruct", "phi3", "3.8B", "microsoft/Phi-3.5-mini-instruct", "Phi-3.5-mini"),
        new("Phi-4-mini-instruct", "phi3", "3.8B", "microsoft/Phi-4-mini-instruct", "Phi-4-mini"),
        new("OLMo-2-0425-1B", "olmo2", "1.5B", "allenai/OLMo-2-0425-1B", "OLMo-2-1B", "olmo-2-1b"),
        new("OLMo-2-1124-7B", "olmo2", "7.3B", "allenai/OLMo-2-1124-7B", "OLMo-2-7B", "olmo-2-7b"),
        new("OLMo-2-1124-13B", "olmo2", "13.7B", "allenai/OLMo-2-1124-13B", "OLMo-2-13B"),
        new("bert-base-uncased", "bert", "110M", "google-bert/bert-base-uncased"),
        new("all-MiniLM-L6-v2", "bert", "22.7M", "sentence-transformers/all-MiniLM-L6-v2", "MiniLM-L6", "all-minilm"),
        new("TinyStories-1M", "gpt_neo", "3.7M", "roneneldan/TinyStories-1M", "tiny-stories-1M"),
        new("TinyStories-33M", "gpt_neo", "68.5M", "roneneldan/TinyStories-33M", "tiny-stories-33M"),
    ];
}
