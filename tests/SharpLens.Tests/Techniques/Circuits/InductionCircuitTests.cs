using SharpLens.Organisms;
using SharpLens.Techniques;
using SharpLens.Techniques.Circuits;
using SharpLens.Tests.Organisms;
using SharpLens.Tests.Techniques;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Circuits;

/// <summary>Weight-based circuits of the small induction organism, whose mechanism is known: a previous-token head in
/// layer 0 whose output the layer-1 induction head's keys read (K-composition), and an OV circuit that copies.</summary>
[Collection(TechniqueOrganismCollection.Name)]
public class InductionCircuitTests(SmallInductionOrganism small, ITestOutputHelper output)
{
    HeadId PreviousTokenHead()
    {
        var prev = small.Findings.Scores.PreviousToken;
        int best = Enumerable.Range(0, prev.GetLength(1)).MaxBy(h => prev[0, h]);
        return new HeadId(0, best);
    }

    [Fact]
    public void K_composition_from_the_previous_token_head_into_the_induction_head_is_the_largest()
    {
        var model = small.Organism.Model;
        var induction = small.Findings.TopInductionHead.Head;
        var previous = PreviousTokenHead();
        Assert.Equal(1, induction.Layer);
        Assert.Equal(previous, small.Findings.TopPreviousTokenHead.Head); // the detector's top previous-token head overall is in layer 0

        var k = WeightCircuits.CompositionScores(model, Composition.K); // [layer, head, layer, head]
        int heads = model.Config.NHeads;
        foreach (var kind in new[] { Composition.Q, Composition.K, Composition.V })
        {
            var s = WeightCircuits.CompositionScores(model, kind);
            output.WriteLine($"{kind}-composition, rows = layer-0 head, columns = layer-1 head:");
            for (int h0 = 0; h0 < heads; h0++)
                output.WriteLine("  0." + h0 + ": " + string.Join("  ", Enumerable.Range(0, heads).Select(h1 => s[0, h0, 1, h1].item<float>().ToString("0.000"))));
        }
        output.WriteLine($"previous-token head {previous}, induction head {induction}");

        var intoInduction = Enumerable.Range(0, heads).Select(h => k[0, h, 1, induction.Head].item<float>()).ToArray();
        Assert.Equal(previous.Head, Array.IndexOf(intoInduction, intoInduction.Max()));
        // Largest of all K-composition scores in the model, too.
        Assert.Equal(k.max().item<float>(), k[0, previous.Head, 1, induction.Head].item<float>());
        // Only earlier → later pairs are scored.
        Assert.Equal(0f, k[1, .., 0, ..].abs().max().item<float>());
        Assert.Equal(0f, k[0, .., 0, ..].abs().max().item<float>());
    }

    [Fact]
    public void Composition_score_equals_the_formula_on_materialised_weights()
    {
        var model = small.Organism.Model;
        using var _ = no_grad();
        var k = WeightCircuits.CompositionScores(model, Composition.K);
        var q = WeightCircuits.CompositionScores(model, Composition.Q);
        var v = WeightCircuits.CompositionScores(model, Composition.V);
        var a0 = model.blocks[0].attn;
        var a1 = model.blocks[1].attn;
        static double Score(Tensor wa, Tensor wb) =>
            (wa.matmul(wb).norm().item<float>()) / (wa.norm().item<float>() * wb.norm().item<float>());
        for (int h0 = 0; h0 < model.Config.NHeads; h0++)
            for (int h1 = 0; h1 < model.Config.NHeads; h1++)
            {
                var ov = a0.W_V[h0].matmul(a0.W_O[h0]); // [d_model, d_model]
                var qk = a1.W_Q[h1].matmul(a1.W_K[h1].T); // [d_model, d_model]
                var ov1 = a1.W_V[h1].matmul(a1.W_O[h1]);
                Assert.Equal(Score(ov, qk), q[0, h0, 1, h1].item<float>(), 5);
                Assert.Equal(Score(ov, qk.T), k[0, h0, 1, h1].item<float>(), 5);
                Assert.Equal(Score(ov, ov1), v[0, h0, 1, h1].item<float>(), 5);
            }
    }

    [Fact]
    public void Induction_heads_full_OV_circuit_copies_tokens()
    {
        var model = small.Organism.Model;
        var induction = small.Findings.TopInductionHead.Head;
        var fullOV = WeightCircuits.FullOV(model); // [layer, head, d_vocab, d_vocab]
        var circuit = fullOV[induction.Layer, induction.Head];
        double top1 = WeightCircuits.DiagonalTopOneFraction(circuit).item<double>();
        double eigen = WeightCircuits.EigenvalueCopyingScore(circuit).item<double>();
        output.WriteLine($"full OV of {induction}: own token top-1 in {top1:P1} of rows; eigenvalue copying score {eigen:0.000}");

        // Independent reference: the materialised d_vocab × d_vocab matrix.
        using (no_grad())
        {
            var a = model.blocks[induction.Layer].attn;
            var full = model.embed.W_E.matmul(a.W_V[induction.Head]).matmul(a.W_O[induction.Head]).matmul(model.unembed.W_U); // [d_vocab, d_vocab]
            double reference = (full.argmax(-1) == arange(full.shape[0])).to(ScalarType.Float64).mean().item<double>();
            Assert.Equal(reference, top1, 9);
            Assert.Equal(reference, WeightCircuits.DiagonalTopOneFraction(circuit, rowsPerBlock: 7).item<double>(), 9);
        }
        int vocab = SmallInductionOrganism.Settings.Vocab;
        // Three in four tokens copied is fifty times chance; a d_head-16 head cannot give every one of 64 tokens its own top logit.
        Assert.True(top1 >= 0.75, $"only {top1:P1} of tokens are copied by {induction} (chance {1.0 / vocab:P1})");
        Assert.True(eigen >= 0.9, $"eigenvalue copying score of {induction} is {eigen:0.000}");

        // The previous-token head does not copy: its job is to move position information.
        var previous = PreviousTokenHead();
        double previousTop1 = WeightCircuits.DiagonalTopOneFraction(fullOV[previous.Layer, previous.Head]).item<double>();
        output.WriteLine($"full OV of {previous}: own token top-1 in {previousTop1:P1} of rows");
    }
}
