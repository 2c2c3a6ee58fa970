using SharpLens.Organisms;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Organisms;

public class TwoHopOrganismTests
{
    [Fact]
    public void Tables_give_every_b_the_same_number_of_as_and_every_c_the_same_number_of_bs()
    {
        var s = new TwoHopSettings();
        Assert.All(s.F().GroupBy(b => b), grp => Assert.Equal(s.NA / s.NB, grp.Count()));
        Assert.All(s.G().GroupBy(c => c), grp => Assert.Equal(s.NB / s.NC, grp.Count()));
        var (prompts, answers) = TwoHopOrganism.AllPrompts(s, TwoHopTask.AToC);
        Assert.Equal(s.G()[s.F()[5] - s.FirstB], answers[5].item<long>());
        Assert.Equal(TwoHopSettings.R2, prompts[5, 2].item<long>());
    }
}
