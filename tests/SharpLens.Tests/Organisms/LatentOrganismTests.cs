using SharpLens.Organisms;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Organisms;

[Collection("latent organism")]
public class LatentOrganismTests(SmallLatentOrganism small)
{
    [Fact]
    public void Prompts_are_balanced_and_the_answer_follows_the_first_token()
    {
        var settings = SmallLatentOrganism.Settings;
        using var prompts = LatentOrganism.Prompts(settings, 400, new Generator(5));
        var secret = settings.SecretSet().ToHashSet();
        var first = prompts.Tokens[.., 1].data<long>().ToArray();
        var latent = prompts.Latent.data<long>().ToArray();
        var answers = prompts.Answers.data<long>().ToArray();
        for (int i = 0; i < first.Length; i++)
        {
            Assert.Equal(secret.Contains((int)first[i]) ? 1 : 0, latent[i]);
            Assert.Equal(latent[i] == 1 ? LatentSettings.Yes : LatentSettings.No, answers[i]);
        }
        Assert.InRange(latent.Average(), 0.4, 0.6);
        Assert.Equal(settings.ContentCount / 2, secret.Count);
    }

    [Fact]
    public void Trained_organism_answers_held_out_prompts()
    {
        using var prompts = LatentOrganism.Prompts(SmallLatentOrganism.Settings, 500, new Generator(999));
        double accuracy = small.Organism.Accuracy(prompts);
        Assert.True(accuracy >= 0.98, $"accuracy on held-out prompts {accuracy:0.000}");
    }
}
