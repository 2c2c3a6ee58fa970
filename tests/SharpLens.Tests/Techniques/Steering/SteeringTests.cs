using SharpLens.Organisms;
using SharpLens.Techniques;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Steering;

[Collection("latent organism")]
public class SteeringTests(SmallLatentOrganism small, ITestOutputHelper output)
{
    const string Hook = "blocks.0.hook_resid_post";

    /// <summary>Share of prompts whose answer (argmax at the last position) becomes the other answer under steering.</summary>
    double FlipRate(LatentPrompts prompts, Tensor direction, double coefficient)
    {
        var model = small.Organism.Model;
        using var _ = no_grad();
        var steered = SharpLens.Techniques.Steering.Run(model, prompts.Tokens, Hook, direction, coefficient, SteeringPositions.Last)[.., -1].argmax(-1);
        return (steered == prompts.WrongAnswers).to(ScalarType.Float64).mean().item<double>();
    }

    [Fact]
    public void Contrastive_vector_flips_the_answer_in_both_directions()
    {
        var settings = SmallLatentOrganism.Settings;
        var model = small.Organism.Model;
        using var reference = LatentOrganism.Prompts(settings, 400, new Generator(41));
        var positive = reference.Tokens[reference.Latent == 1];
        var negative = reference.Tokens[reference.Latent == 0];
        var vector = SharpLens.Techniques.Steering.ContrastiveVector(model, Hook, positive, negative); // [d_model]

        using var test = LatentOrganism.Prompts(settings, 400, new Generator(42));
        using var noPrompts = new LatentPrompts(test.Tokens[test.Latent == 0], test.Latent[test.Latent == 0], test.Answers[test.Latent == 0]);
        using var yesPrompts = new LatentPrompts(test.Tokens[test.Latent == 1], test.Latent[test.Latent == 1], test.Answers[test.Latent == 1]);
        Assert.True(small.Organism.Accuracy(noPrompts) > 0.98 && small.Organism.Accuracy(yesPrompts) > 0.98);

        // A random direction of the same norm is the control: it must flip far fewer answers.
        var random = randn(vector.shape, generator: new Generator(3));
        random = random / random.norm() * vector.norm();
        foreach (double c in new[] { 1.0, 2.0, 3.0, 4.0 })
            output.WriteLine($"coefficient ±{c}: No→Yes {FlipRate(noPrompts, vector, c):0.000} (random {FlipRate(noPrompts, random, c):0.000})   " +
                             $"Yes→No {FlipRate(yesPrompts, vector, -c):0.000} (random {FlipRate(yesPrompts, random, -c):0.000})");

        // Measured on this organism: No→Yes flips from coefficient 2, Yes→No from 3 (|v| is close to the residual's norm,
        // so large coefficients also erase the latent, which a random direction does too and which reads as No).
        const double coefficient = 3.0;
        double toYes = FlipRate(noPrompts, vector, coefficient), toNo = FlipRate(yesPrompts, vector, -coefficient);
        double randomToYes = FlipRate(noPrompts, random, coefficient), randomToNo = FlipRate(yesPrompts, random, -coefficient);
        Assert.True(toYes >= 0.9, $"adding 3 × the vector turned {toYes:P0} of No answers into Yes");
        Assert.True(toNo >= 0.9, $"subtracting 3 × the vector turned {toNo:P0} of Yes answers into No");
        Assert.True(toYes - randomToYes >= 0.5 && toNo - randomToNo >= 0.5,
            $"a random direction flipped {randomToYes:P0} / {randomToNo:P0} against the vector's {toYes:P0} / {toNo:P0}");
    }

    [Fact]
    public void Steering_hook_is_removed_when_disposed()
    {
        var model = small.Organism.Model;
        using var prompts = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 8, new Generator(43));
        using var _ = no_grad();
        var before = model.Run(prompts.Tokens);
        var direction = randn([model.Config.DModel], generator: new Generator(8)); // not constant: LayerNorm would centre a constant away
        using (SharpLens.Techniques.Steering.Apply(model, Hook, direction, 5.0))
            Assert.True((model.Run(prompts.Tokens) - before).abs().max().item<float>() > 1e-3);
        Assert.Equal(0f, (model.Run(prompts.Tokens) - before).abs().max().item<float>());
    }

    [Fact]
    public void Steering_applies_during_generation()
    {
        var model = small.Organism.Model;
        using var prompts = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 64, new Generator(44));
        var no = prompts.Tokens[prompts.Latent == 0];
        var reference = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 400, new Generator(41));
        var vector = SharpLens.Techniques.Steering.ContrastiveVector(model, Hook, reference.Tokens[reference.Latent == 1], reference.Tokens[reference.Latent == 0]);
        var plain = model.Generate(no, 1, temperature: 0)[.., -1];
        Assert.True((plain == LatentSettings.No).all().item<bool>());
        Tensor steered;
        using (SharpLens.Techniques.Steering.Apply(model, Hook, vector, 3.0, SteeringPositions.Last))
            steered = model.Generate(no, 1, temperature: 0)[.., -1];
        double yes = (steered == LatentSettings.Yes).to(ScalarType.Float64).mean().item<double>();
        Assert.True(yes >= 0.9, $"steered generation answered Yes on {yes:P0}");
    }
}
