using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Memory and time to load a Hugging Face GPT-2 checkpoint, against the size of its weights.</summary>
public sealed record LoadResult(long WeightBytes, long PeakExtraBytes, double Seconds)
{
    public double PeakRatio => (double)PeakExtraBytes / WeightBytes;
}

/// <summary>
/// Saves a random GPT-2-shaped model in the Hugging Face layout, then measures loading it back (unprocessed).
/// </summary>
/// <remarks>
/// Memory is the rise of anonymous resident memory (RssAnon: heap and tensors), sampled every millisecond: the
/// checkpoint is memory-mapped, and its page cache is the file's, not a copy the loader made, so VmRSS/VmHWM
/// (which count mapped file pages) would charge the file twice. Target: at most 1.2x the weights.
/// </remarks>
public static class LoadBenchmark
{
    /// <summary>
    /// A random GPT-2-shaped model saved in the Hugging Face GPT-2 layout as <paramref name="dtype"/>, loaded back as
    /// <paramref name="dtype"/> (so a bf16 checkpoint is measured against its bf16 weights).
    /// </summary>
    public static LoadResult Run(ModelConfig config, TextWriter? progress = null, ScalarType dtype = ScalarType.Float32) =>
        Run(folder =>
        {
            using var model = new HookedTransformer(config with { TiedEmbeddings = false }, new ModelOptions("cpu", dtype), seed: 3);
            model.SaveHuggingFace(folder);
            return model.parameters().Sum(p => p.numel() * p.ElementSize);
        }, progress, new ModelOptions("cpu", dtype));

    /// <summary>
    /// Writes a checkpoint with <paramref name="save"/> (which returns the bytes of the weights it wrote) into a
    /// temporary folder, then measures loading it back through <see cref="HookedTransformer.FromPretrained"/>, unprocessed.
    /// </summary>
    public static LoadResult Run(Func<string, long> save, TextWriter? progress = null, ModelOptions? options = null)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-load-bench-{Guid.NewGuid():N}");
        try
        {
            long weightBytes = save(folder);
            progress?.WriteLine($"saved a {weightBytes / 1e6:F0} MB checkpoint; loading it back");
            // One-time costs (JIT, libtorch's kernels) belong to the process, not the checkpoint: pay them first.
            HookedTransformer.FromPretrained(folder, options, processing: WeightProcessingOptions.None).Dispose();

            GC.Collect();
            GC.WaitForPendingFinalizers();
            PeakMemory.TrimHeap();
            long baseline = PeakMemory.Read("RssAnon"), peak = baseline;
            using var stop = new CancellationTokenSource();
            var sampler = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    peak = Math.Max(peak, PeakMemory.Read("RssAnon"));
                    Thread.Sleep(1);
                }
            });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var loaded = HookedTransformer.FromPretrained(folder, options, processing: WeightProcessingOptions.None))
            {
                clock.Stop();
                peak = Math.Max(peak, PeakMemory.Read("RssAnon"));
            }
            stop.Cancel();
            sampler.Wait();
            return new LoadResult(weightBytes, peak - baseline, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Loading one checkpoint of each weight-map shape: GPT-2 (its own streaming loader), a dense Llama and a Mixtral
    /// mixture of experts (the family table's per-parameter writer), all F32 and untied.
    /// </summary>
    public static IEnumerable<(string Family, LoadResult Result)> Families(string? only = null, TextWriter? progress = null)
    {
        var gpt2 = new ModelConfig { DModel = 512, NLayers = 4, NHeads = 8, DHead = 64, DMlp = 2048, DVocab = 8000, NCtx = 512, ActFn = Activation.GeluNew };
        var llama = new ModelConfig
        {
            DModel = 512, NLayers = 4, NHeads = 8, DHead = 64, DMlp = 1408, DVocab = 8000, NCtx = 512, ActFn = Activation.Silu, GatedMlp = true,
            NormalizationType = Normalization.RMS, PositionalEmbeddingType = PositionalEmbedding.Rotary, Eps = 1e-5, ModelName = "bench-llama",
        };
        if (only is null or "gpt2") yield return ("gpt2", Run(gpt2, progress));
        if (only is null or "llama")
            yield return ("llama", Run(folder =>
            {
                using var model = new HookedTransformer(llama, seed: 3);
                Loading.HuggingFaceLlama.Save(model, folder);
                return model.parameters().Sum(p => p.numel() * p.ElementSize);
            }, progress));
        if (only is null or "mixtral") yield return ("mixtral", Run(SaveRandomMixtral, progress));
    }

    /// <summary>A random Mixtral checkpoint (8 experts, top-2, 2 layers, grouped-query attention) in Hugging Face's layout.</summary>
    static long SaveRandomMixtral(string folder)
    {
        const int d = 384, heads = 6, kv = 2, dHead = 64, mlp = 1344, experts = 8, layers = 2, vocab = 8000;
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""
            {"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": {{d}}, "intermediate_size": {{mlp}},
             "num_hidden_layers": {{layers}}, "num_attention_heads": {{heads}}, "num_key_value_heads": {{kv}}, "head_dim": {{dHead}},
             "num_local_experts": {{experts}}, "num_experts_per_tok": 2, "max_position_embeddings": 512, "vocab_size": {{vocab}},
             "hidden_act": "silu", "rms_norm_eps": 1e-5, "rope_theta": 1000000.0, "sliding_window": null, "tie_word_embeddings": false,
             "router_jitter_noise": 0.0, "torch_dtype": "float32"}
            """);
        var shapes = new List<(string Name, long[] Shape)> { ("model.embed_tokens.weight", [vocab, d]), ("model.norm.weight", [d]), ("lm_head.weight", [vocab, d]) };
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}";
            shapes.AddRange([($"{p}.input_layernorm.weight", [d]), ($"{p}.post_attention_layernorm.weight", [d]),
                ($"{p}.self_attn.q_proj.weight", [heads * dHead, d]), ($"{p}.self_attn.k_proj.weight", [kv * dHead, d]),
                ($"{p}.self_attn.v_proj.weight", [kv * dHead, d]), ($"{p}.self_attn.o_proj.weight", [d, heads * dHead]),
                ($"{p}.block_sparse_moe.gate.weight", [experts, d])]);
            for (int e = 0; e < experts; e++)
                shapes.AddRange([($"{p}.block_sparse_moe.experts.{e}.w1.weight", [mlp, d]), ($"{p}.block_sparse_moe.experts.{e}.w3.weight", [mlp, d]),
                    ($"{p}.block_sparse_moe.experts.{e}.w2.weight", [d, mlp])]);
        }
        var generator = new Generator(3);
        using (torch.no_grad())
            Loading.SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), [.. shapes.Select(s => new Loading.SafeTensorSpec(s.Name, ScalarType.Float32, s.Shape))],
                name => torch.randn(shapes.First(s => s.Name == name).Shape, generator: generator).mul_(0.02));
        return shapes.Sum(s => s.Shape.Aggregate(1L, (a, b) => a * b)) * sizeof(float);
    }
}
