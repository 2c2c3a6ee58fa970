using SharpLens.Models;
using TorchSharp;

namespace SharpLens.Tests.Docs;

/// <summary>The README's first example, run on a tiny GPT-2 saved in the Hugging Face layout.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void The_first_look_example_runs_as_written()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-readme-{Guid.NewGuid():N}");
        try
        {
            var cfg = new ModelConfig
            {
                DModel = 32, NLayers = 10, NHeads = 12, DHead = 8, DMlp = 64, DVocab = 50257, NCtx = 64,
                TiedEmbeddings = true, ModelName = "readme-gpt2",
            };
            cfg = cfg with { DModel = cfg.NHeads * cfg.DHead };
            using (var random = new HookedTransformer(cfg, seed: 5)) random.SaveHuggingFace(folder);

            // --- as in the README ---
            using var model = HookedTransformer.FromPretrained(folder);
            var tokens = model.ToTokens("When Mary and John went to the store, John gave a drink to");
            var (logits, cache) = model.RunWithCache(tokens, name => name.EndsWith("hook_pattern"));
            var pattern = cache["pattern", 5];
            var ablated = model.RunWithHooks(tokens, [("blocks.9.attn.hook_z", (z, hook) => { z[.., .., 9] = 0; return z; })]);
            // ---

            Assert.Equal(new long[] { 1, 12, tokens.shape[1], tokens.shape[1] }, pattern.shape);
            Assert.Equal(10, cache.Count);
            Assert.True((logits - ablated).abs().max().item<float>() > 0);
            cache.Dispose();
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
    }
}
