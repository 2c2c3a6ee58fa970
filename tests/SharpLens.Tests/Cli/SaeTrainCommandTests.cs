using System.CommandLine;
using System.Text.Json.Nodes;
using SharpLens.Cli.Commands;
using SharpLens.Organisms;
using SharpLens.Saes;
using SharpLens.Tests.Organisms;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Cli;

[Collection("latent organism")]
public class SaeTrainCommandTests(SmallLatentOrganism small)
{
    static int Invoke(params string[] args) => new RootCommand { SaeCommand.Create() }.Parse(args).Invoke();

    [Fact]
    public void Sae_train_eval_and_dashboard_run_on_the_latent_organism_and_the_saved_sae_reconstructs_its_residual_stream()
    {
        string root = Path.Combine(Path.GetTempPath(), $"sharplens-sae-train-{Guid.NewGuid():N}");
        try
        {
            // The collection's organism, placed where the CLI's cache looks, so nothing trains twice.
            small.Organism.Save(OrganismCache.FolderFor(SmallLatentOrganism.Settings.CacheName, root));
            string sae = Path.Combine(root, "sae");
            const string hook = "blocks.0.hook_resid_post";
            Assert.Equal(0, Invoke("sae", "train", "--model", "latent", "--organism-cache", root, "--hook", hook, "--expansion", "4", "--k", "4",
                "--tokens", "40000", "--batch-size", "512", "--eval-tokens", "8000", "--out", sae, "--threads", "1"));

            var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(sae, "cfg.json")))!;
            Assert.Equal("topk", (string)cfg["architecture"]!);
            Assert.Equal(128, (int)cfg["d_sae"]!);
            Assert.Equal("latent", (string)cfg["metadata"]!["model_name"]!);
            Assert.Equal(hook, (string)cfg["metadata"]!["hook_name"]!);
            Assert.Equal(SmallLatentOrganism.Settings.Length + 2, (int)cfg["metadata"]!["context_size"]!);
            Assert.StartsWith("organism:latent", (string)cfg["metadata"]!["dataset_path"]!);
            Assert.True(File.Exists(Path.Combine(sae, "sparsity.safetensors")));
            Assert.True(File.Exists(Path.Combine(sae, "density.png")));
            var trained = JsonNode.Parse(File.ReadAllText(Path.Combine(sae, "eval.json")))!;
            Assert.Equal(4.0, (double)trained["l0"]!, 3);
            Assert.True((long)trained["training"]!["tokens"]! >= 40000);

            // Independent check: the saved SAE on residuals read with RunWithCache from fresh prompts.
            using (var scope = torch.NewDisposeScope())
            using (var loaded = SaeFiles.Load(sae))
            using (var prompts = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 300, new Generator(12345)))
            {
                var (_, cache) = small.Organism.Model.RunWithCache(prompts.Tokens, n => n == hook);
                using (cache)
                {
                    var x = cache[hook].narrow(1, 1, SmallLatentOrganism.Settings.Length).reshape(-1, 32); // [300 · n, d_model], BOS left out
                    var r = SaeEvaluation.Reconstruction(loaded, x);
                    Assert.True(r.ExplainedVariance > 0.6, $"explained variance {r.ExplainedVariance:P1}");
                    Assert.Equal(4.0, r.L0, 3);
                }
            }

            Assert.Equal(0, Invoke("sae", "eval", "--model", "latent", "--organism-cache", root, "--sae", sae, "--tokens", "5000", "--threads", "1"));
            var evaluated = JsonNode.Parse(File.ReadAllText(Path.Combine(sae, "eval.json")))!;
            var ce = evaluated["ce_loss"]!;
            Assert.True((double)ce["zero_ablation"]! > (double)ce["clean"]! + 0.3, "zeroing the residual stream must hurt the answer");
            Assert.True((double)ce["recovered"]! > 0.8, $"CE loss recovered {(double)ce["recovered"]!:P1}");
            // At x₁'s own position the latent is a function of the token, which the residual stream holds exactly.
            Assert.True((double)evaluated["planted_latent"]!["x1_position"]!["linear_probe_accuracy"]! > 0.95);

            string html = Path.Combine(root, "dash.html");
            Assert.Equal(0, Invoke("sae", "dashboard", "--model", "latent", "--organism-cache", root, "--sae", sae, "--top", "3", "--contexts", "64", "--out", html, "--threads", "1"));
            string page = File.ReadAllText(html);
            Assert.Contains("Yes", page); // logit effects: the organism has an unembedding, and its answer tokens are Yes / No
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public void Sae_train_refuses_a_corpus_for_an_organism_with_exit_code_2()
    {
        string root = Path.Combine(Path.GetTempPath(), $"sharplens-sae-train-{Guid.NewGuid():N}");
        var error = new StringWriter();
        var previous = Console.Error;
        try
        {
            small.Organism.Save(OrganismCache.FolderFor(SmallLatentOrganism.Settings.CacheName, root));
            Console.SetError(error);
            Assert.Equal(2, Invoke("sae", "train", "--model", "latent", "--organism-cache", root, "--hook", "blocks.0.hook_resid_post", "--corpus", "brown", "--out", Path.Combine(root, "x")));
            Assert.Contains("own training distribution", error.ToString());
            Assert.False(Directory.Exists(Path.Combine(root, "x")));
        }
        finally { Console.SetError(previous); if (Directory.Exists(root)) Directory.Delete(root, recursive: true); }
    }
}
