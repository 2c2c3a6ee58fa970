using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Saes;
using SharpLens.Techniques;
using SharpLens.Techniques.MaxActivating;
using SharpLens.Techniques.Patching;
using SharpLens.Tests.Encoder;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Hooks;

/// <summary>
/// The same technique code — written once against <see cref="HookedRootModule"/> — on a decoder, on the real
/// all-MiniLM-L6-v2 encoder and on a decoder with an SAE spliced in.
/// </summary>
[Collection("minilm")]
public sealed class HookedRootModuleTests(MiniLmFixture minilm)
{
    const string SaeHook = "blocks.1.hook_resid_pre";

    public enum Kind { Decoder, Encoder, SaeSpliced }

    /// <summary>A model of the kind, clean and corrupted tokens [4, 8] that differ, and something to dispose.</summary>
    (HookedRootModule Model, Tensor Clean, Tensor Corrupted, IDisposable Owner) Subject(Kind kind)
    {
        switch (kind)
        {
            case Kind.Encoder:
            {
                var (a, _, _) = minilm.Model.ToTokens(["the cat sat on the warm mat", "a bird sang in the tall tree", "we read books every night", "rain fell on the old town"]);
                var (b, _, _) = minilm.Model.ToTokens(["the dog ran by the cold lake", "a fish swam in the deep pond", "they sold cars every day", "snow hit the new city hall"]);
                long pos = Math.Min(a.shape[1], b.shape[1]);
                return (minilm.Model, a[.., ..(int)pos].clone(), b[.., ..(int)pos].clone(), new Nothing());
            }
            case Kind.SaeSpliced:
            {
                var model = TestModels.RandomModel();
                var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, model.Config.DModel, 64) { Metadata = new() { HookName = SaeHook } }, seed: 3);
                using (no_grad())
                {
                    var g = new Generator(13);
                    foreach (var (_, p) in sae.named_parameters()) p.copy_(0.3 * randn(p.shape, generator: g));
                }
                var spliced = new HookedSaeTransformer(model);
                spliced.AddSae(sae);
                return (spliced, TestModels.RandomTokens(4, 8, 50, seed: 1), TestModels.RandomTokens(4, 8, 50, seed: 2), new All(spliced, sae, model));
            }
            default:
            {
                var model = TestModels.RandomModel();
                return (model, TestModels.RandomTokens(4, 8, 50, seed: 1), TestModels.RandomTokens(4, 8, 50, seed: 2), model);
            }
        }
    }

    [Theory]
    [InlineData(Kind.Decoder)]
    [InlineData(Kind.Encoder)]
    [InlineData(Kind.SaeSpliced)]
    public void Patching_a_whole_residual_stream_back_restores_the_clean_output_on_every_kind_of_model(Kind kind)
    {
        using var scope = NewDisposeScope();
        var (model, clean, corrupted, owner) = Subject(kind);
        using var _ = owner;
        // Answers index the output's last dimension: vocabulary ids for a decoder, hidden units for MiniLM (no head).
        using var pairs = new PromptPairs(clean, corrupted, tensor(new long[] { 3, 5, 7, 9 }), tensor(new long[] { 11, 13, 17, 19 }));
        using var result = ActivationPatching.Sweep(model, pairs, "resid_pre", SweepBy.Layer);
        Assert.Equal(new long[] { model.Config.NLayers }, result.Values.shape);
        Assert.True(Math.Abs(result.CleanMetric - result.CorruptedMetric) > 1e-3, "clean and corrupted must differ for the test to mean anything");
        // All of resid_pre at any layer carries everything downstream, so each cell restores all of the clean metric.
        var values = result.Values.data<float>().ToArray();
        Assert.All(values, v => Assert.InRange(v, 1 - 1e-3, 1 + 1e-3));
    }

    [Theory]
    [InlineData(Kind.Decoder)]
    [InlineData(Kind.Encoder)]
    [InlineData(Kind.SaeSpliced)]
    public void Steering_adds_exactly_its_vector_and_contrastive_vectors_are_mean_differences_on_every_kind_of_model(Kind kind)
    {
        using var scope = NewDisposeScope();
        var (model, clean, corrupted, owner) = Subject(kind);
        using var _ = owner;
        string hook = "blocks.0.hook_resid_post";
        using var __ = no_grad();

        var (_, cleanCache) = model.RunWithCache(clean, [hook]);
        var (_, corruptCache) = model.RunWithCache(corrupted, [hook]);
        var byHand = cleanCache[hook][.., -1].mean([0]) - corruptCache[hook][.., -1].mean([0]); // [d_model]
        var vector = Steering.ContrastiveVector(model, hook, clean, corrupted);
        Assert.True((vector - byHand).abs().max().item<float>() < 1e-5f);

        Tensor steeredAct;
        using (Steering.Apply(model, hook, vector, 2.0))
        {
            var (_, steered) = model.RunWithCache(clean, [hook]);
            using (steered) steeredAct = steered[hook].clone();
        }
        Assert.True((steeredAct - cleanCache[hook] - 2.0 * vector).abs().max().item<float>() < 1e-4f);
        var (_, after) = model.RunWithCache(clean, [hook]);
        using (after) Assert.True((after[hook] - cleanCache[hook]).abs().max().item<float>() == 0f, "the steering hook is gone after its handle");
        cleanCache.Dispose();
        corruptCache.Dispose();
    }

    [Theory]
    [InlineData(Kind.Decoder)]
    [InlineData(Kind.Encoder)]
    [InlineData(Kind.SaeSpliced)]
    public void Max_activating_examples_and_probes_read_the_same_activations_as_the_cache_on_every_kind_of_model(Kind kind)
    {
        using var scope = NewDisposeScope();
        var (model, clean, corrupted, owner) = Subject(kind);
        using var _ = owner;
        string hook = "blocks.1.hook_resid_pre";
        using var __ = no_grad();

        var found = MaxActivatingExamples.Find(model, ActivationTarget.Feature(hook, 3), [clean, corrupted], new MaxActivatingSettings { TopK = 3 });
        var (_, a) = model.RunWithCache(clean, [hook]);
        var (_, b) = model.RunWithCache(corrupted, [hook]);
        var all = cat([a[hook][.., .., 3], b[hook][.., .., 3]], 0).flatten().to(ScalarType.Float64); // [8·pos]
        var top = all.topk(3).values.data<double>().ToArray();
        Assert.Equal(top, found.Top.Select(e => e.Activation).ToArray(), (x, y) => Math.Abs(x - y) < 1e-5);

        // Probes read the last position: a label the activation carries linearly (the sign of unit 3 there) is found.
        var tokens = cat([clean, corrupted], 0);
        var acts = ProbeSweep.Activations(model, tokens, [hook])[hook]; // [8, d]
        Assert.True((acts - cat([a[hook][.., -1], b[hook][.., -1]], 0)).abs().max().item<float>() < 1e-5f);
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void Backward_hooks_in_RunWithHooks_see_the_gradient_autograd_computes_and_are_removed_afterwards()
    {
        using var scope = NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 6, 50);
        string hook = "blocks.1.hook_resid_pre";
        Tensor? leaf = null, seen = null;
        HookFunction makeLeaf = (act, _) => leaf = act.detach().clone().requires_grad_(true).DetachFromDisposeScope();
        HookFunction record = (grad, _) => { seen = grad.clone().DetachFromDisposeScope(); return null; };

        var logits = model.RunWithHooks(tokens, [(hook, makeLeaf)], [(hook, record)], output => output[.., -1, 7].sum());
        Assert.Equal(new long[] { 2, 6, 50 }, logits.shape);
        Assert.NotNull(seen);
        Assert.True((seen! - leaf!.grad!).abs().max().item<float>() == 0f);
        Assert.True(seen!.abs().sum().item<float>() > 0f);
        Assert.All(model.HookDict.Values, h => Assert.False(h.HasHooks));
        model.zero_grad();

        var error = Assert.Throws<ArgumentException>(() => model.RunWithHooks(tokens, null, [(hook, record)], output => output));
        Assert.Contains("one number", error.Message);
        Assert.All(model.HookDict.Values, h => Assert.False(h.HasHooks));
        leaf.Dispose();
        seen.Dispose();
    }

    [Fact]
    public void An_sae_spliced_model_is_a_hooked_transformer_sharing_the_models_weights_and_disposing_it_leaves_the_model()
    {
        using var scope = NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 6, 50);
        var before = model.Run(tokens);
        var spliced = new HookedSaeTransformer(model);
        HookedTransformer asDecoder = spliced;
        Assert.Same(model.Config, asDecoder.Config);
        Assert.Equal(model.parameters().Count(), asDecoder.parameters().Count());
        Assert.True((asDecoder.Run(tokens) - before).abs().max().item<float>() == 0f);
        Assert.Equal(model.HookDict.Keys, asDecoder.HookDict.Keys);
        spliced.Dispose();
        Assert.True((model.Run(tokens) - before).abs().max().item<float>() == 0f);
    }

    sealed class Nothing : IDisposable { public void Dispose() { } }

    sealed class All(params IDisposable[] items) : IDisposable
    {
        public void Dispose() { foreach (var d in items) d.Dispose(); }
    }
}
