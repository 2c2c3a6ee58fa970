using SharpLens.Organisms;
using SharpLens.Techniques;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Probes;

[Collection("latent organism")]
public class LatentProbeTests(SmallLatentOrganism small, ITestOutputHelper output)
{
    [Fact]
    public void Probe_reads_the_latent_after_attention_and_not_before()
    {
        var model = small.Organism.Model;
        using var prompts = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 800, new Generator(31));
        string[] hooks = ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_post"];
        var results = ProbeSweep.Run(model, prompts.Tokens, prompts.Latent, hooks, settings: new ProbeSettings { Seed = 1 });
        foreach (var r in results) output.WriteLine($"{r.Hook,-26} train {r.TrainAccuracy:0.000}  test {r.TestAccuracy:0.000}  AUROC {r.TestAuroc:0.000}");

        // The last position sees only its own token and position until attention brings x₁ there.
        Assert.InRange(results[0].TestAccuracy, 0.0, 0.6);
        Assert.InRange(results[1].TestAccuracy, 0.0, 0.6);
        // After layer 0's attention (and at the end) the latent is linearly readable.
        Assert.True(results[2].TestAccuracy >= 0.95, $"resid_post 0: {results[2].TestAccuracy:0.000}");
        Assert.True(results[3].TestAccuracy >= 0.95, $"resid_post 1: {results[3].TestAccuracy:0.000}");
        Assert.True(results[3].TestAuroc >= 0.98, $"resid_post 1 AUROC: {results[3].TestAuroc:0.000}");
    }
}
