using SharpLens.Attribution;
using SharpLens.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Attribution;

public class FeatureInterventionTests
{
    static readonly long[] Prompt = [5, 17, 3, 29, 11];

    [Fact]
    public void Setting_a_feature_adds_its_decoder_times_the_change_to_the_mlp_outputs_it_writes()
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = AttributionExactnessTests.Build("clt-relu");
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        var ids = torch.tensor(Prompt);
        using var state = rm.Run(ids);
        // An active layer-0 feature at position 2, set to 3× its activation.
        var act = state.Activations[0, 2];
        long f = act.argmax().item<long>();
        double a = act[f].item<float>();
        Assert.True(a > 0);
        using var same = FeatureInterventions.Run(rm, ids, [FeatureIntervention.Set(0, 2, f, a)]);
        Assert.True((same.Logits - model.Run(ids.unsqueeze(0))[0]).abs().max().item<float>() < 1e-5f);

        using var r = FeatureInterventions.Run(rm, ids, [FeatureIntervention.Scale(0, 2, f, 3.0)], freezeAttention: false);
        // Independently: add 2a · W_dec[0][f, j] to every MLP output j at position 2 (a CLT feature writes to all layers).
        var hooks = Enumerable.Range(0, 3).Select(j => (rm.OutputHook(j), (HookFunction)((y, _) =>
        {
            var z = y.clone();
            z[0, 2] += 2 * a * set.W_dec[0][f, j];
            return z;
        }))).ToList();
        var expected = model.RunWithHooks(ids.unsqueeze(0), hooks)[0];
        Assert.True((r.Logits - expected).abs().max().item<float>() < 1e-5f);
        // Downstream features move; positions before the intervention do not.
        Assert.True((r.Activations[2, 2..] - state.Activations[2, 2..]).abs().max().item<float>() > 0);
        Assert.True((r.Activations[.., 1..2] - state.Activations[.., 1..2]).abs().max().item<float>() < 1e-6f); // position 0 is zeroed in the prompt state
    }

    [Fact]
    public void Generation_without_interventions_is_the_models_greedy_continuation_and_open_ended_ones_apply_to_new_tokens()
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = AttributionExactnessTests.Build("plt-relu");
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        var ids = torch.tensor(Prompt);
        var plain = FeatureInterventions.Generate(rm, ids, [], 4, freezeAttention: false);
        var expected = model.Generate(ids.unsqueeze(0), 4, temperature: 0)[0];
        Assert.Equal(expected.data<long>().ToArray(), plain.data<long>().ToArray());
        var frozen = FeatureInterventions.Generate(rm, ids, [], 4, freezeAttention: true);
        Assert.Equal(expected.data<long>().ToArray(), frozen.data<long>().ToArray());
        // A huge open-ended push on one layer-1 feature changes what is generated.
        var pushed = FeatureInterventions.Generate(rm, ids, [FeatureIntervention.Set(1, 1, 0, 200.0, openEnded: true)], 4);
        Assert.NotEqual(expected.data<long>().ToArray(), pushed.data<long>().ToArray());
    }
}
