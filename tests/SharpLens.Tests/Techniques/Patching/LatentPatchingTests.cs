using SharpLens.Organisms;
using SharpLens.Techniques.Patching;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Patching;

/// <summary>
/// Patching on the planted-latent organism (LayerNorm, attention + MLP): clean and corrupted prompts differ only in x₁,
/// moved to the other side of the secret set, so the latent and the answer (Yes / No) flip.
/// </summary>
[Collection("latent organism")]
public class LatentPatchingTests(SmallLatentOrganism small, ITestOutputHelper output)
{
    const int Pairs = 16;

    static PromptPairs FlippedFirstToken(LatentSettings settings)
    {
        using var scope = NewDisposeScope();
        using var prompts = LatentOrganism.Prompts(settings, Pairs, new Generator(23));
        var secret = settings.SecretSet().Select(t => (long)t).ToArray();
        var outside = Enumerable.Range(LatentSettings.FirstContent, settings.ContentCount).Select(t => (long)t).Except(secret).ToArray();
        var corrupted = prompts.Tokens.clone();
        for (int b = 0; b < Pairs; b++)
        {
            // The pair's other x₁: the same index into the other half, so every pair flips the latent.
            long x1 = prompts.Tokens[b, 1].item<long>();
            corrupted[b, 1] = secret.Contains(x1) ? outside[Array.IndexOf(secret, x1) % outside.Length] : secret[Array.IndexOf(outside, x1) % secret.Length];
        }
        var pairs = new PromptPairs(prompts.Tokens.clone(), corrupted, prompts.Answers.clone(), prompts.WrongAnswers.clone());
        return pairs;
    }

    [Theory]
    [InlineData("resid_pre")]
    [InlineData("resid_mid")]
    [InlineData("resid_post")]
    public void Attribution_patching_correlates_with_activation_patching_on_the_residual_stream(string component)
    {
        var model = small.Organism.Model;
        using var pairs = FlippedFirstToken(SmallLatentOrganism.Settings);
        using var activation = ActivationPatching.Sweep(model, pairs, component);
        using var attribution = AttributionPatching.Sweep(model, pairs, component);
        Assert.Equal([model.Config.NLayers, pairs.Positions], activation.Values.shape);
        Assert.True(activation.CleanMetric - activation.CorruptedMetric > 2,
            $"the flip should move the logit difference: clean {activation.CleanMetric:0.00}, corrupted {activation.CorruptedMetric:0.00}");
        double r = Pearson(activation.Values, attribution.Values);
        output.WriteLine($"{component}: Pearson {r:0.000}; clean {activation.CleanMetric:0.00}, corrupted {activation.CorruptedMetric:0.00}");
        output.WriteLine($"  activation  {Flat(activation.Values)}");
        output.WriteLine($"  attribution {Flat(attribution.Values)}");
        Assert.True(r >= 0.8, $"{component}: Pearson {r:0.000} < 0.8");
    }

    static string Flat(Tensor t) => string.Join(" ", t.reshape(-1).data<float>().ToArray().Select(v => v.ToString("0.00")));

    internal static double Pearson(Tensor a, Tensor b)
    {
        using var scope = NewDisposeScope();
        var x = a.reshape(-1).to(ScalarType.Float64);
        var y = b.reshape(-1).to(ScalarType.Float64);
        var dx = x - x.mean();
        var dy = y - y.mean();
        return ((dx * dy).sum() / (dx.norm() * dy.norm())).item<double>();
    }
}
