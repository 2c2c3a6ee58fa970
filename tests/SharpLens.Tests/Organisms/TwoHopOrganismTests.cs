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

    [Fact]
    public void Held_out_as_are_the_lowest_numbered_of_every_b_and_never_in_a_two_hop_training_batch()
    {
        var s = new TwoHopSettings { HeldOutPerB = 2 };
        int[] f = s.F();
        bool[] held = s.HeldOutA();
        foreach (var group in Enumerable.Range(0, s.NA).GroupBy(i => f[i]))
            Assert.Equal(group.OrderBy(i => i).Take(2), group.Where(i => held[i]).OrderBy(i => i));
        var (heldPrompts, _) = TwoHopOrganism.AllPrompts(s, TwoHopTask.AToC, heldOut: true);
        var (trainedPrompts, _) = TwoHopOrganism.AllPrompts(s, TwoHopTask.AToC, heldOut: false);
        Assert.Equal(2 * s.NB, heldPrompts.shape[0]);
        Assert.Equal(s.NA - 2 * s.NB, trainedPrompts.shape[0]);
        Assert.Equal(s.NA, TwoHopOrganism.AllPrompts(s, TwoHopTask.AToB, heldOut: true).Prompts.shape[0]); // one-hop tasks keep every A

        var batch = TwoHopOrganism.TrainingBatch(s, 4096, new Generator(5));
        var rows = batch.Tokens.data<long>().ToArray();
        int twoHop = 0;
        for (int r = 0; r < 4096; r++)
        {
            long x = rows[4 * r + 1], relation = rows[4 * r + 2];
            if (relation != TwoHopSettings.R2 || x >= s.FirstB) continue; // one-hop prompts
            twoHop++;
            Assert.False(held[(int)x - TwoHopSettings.FirstA], $"held-out a{x - TwoHopSettings.FirstA} was trained");
        }
        Assert.InRange(twoHop, 1000, 1750); // about a third of the batch
    }

    [Fact]
    public void Holding_out_every_a_of_a_b_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new TwoHopSettings { HeldOutPerB = 4 }.Validated());
        Assert.Equal(nameof(TwoHopSettings.HeldOutPerB), e.ParamName);
    }
}
