using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes;

public class HookedSaeTransformerTests
{
    const string Hook = "blocks.1.hook_resid_pre";

    static Sae RandomSae(SaeConfig config, long seed = 3)
    {
        var sae = new Sae(config, seed);
        using var _ = torch.no_grad();
        var g = new Generator((ulong)seed + 10);
        foreach (var (_, p) in sae.named_parameters())
            p.copy_(0.3 * torch.randn(p.shape, generator: g));
        return sae;
    }

    static SaeConfig Standard(int dIn = 32) => new(SaeArchitecture.Standard, dIn, 64) { Metadata = new() { HookName = Hook } };

    [Fact]
    public void Spliced_sae_with_the_error_term_leaves_logits_unchanged()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        var clean = model.Run(tokens);
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);

        using (spliced.AddSae(sae, useErrorTerm: true))
            Assert.True((spliced.Run(tokens) - clean).abs().max().item<float>() < 1e-5f);
        using (spliced.AddSae(sae, useErrorTerm: false))
            Assert.True((spliced.Run(tokens) - clean).abs().max().item<float>() > 1e-2f, "without the error term the reconstruction should change the logits");
        Assert.True((model.Run(tokens) - clean).abs().max().item<float>() == 0f, "removing the SAE restores the model");
    }

    [Fact]
    public void While_spliced_the_models_own_hooks_and_the_technique_library_reach_features()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);
        string acts = $"{Hook}.hook_sae_acts_post";
        using (spliced.AddSae(sae, useErrorTerm: true))
        {
            // The plain model's cache and hooks know the feature hook.
            var (clean, cache) = model.RunWithCache(tokens, [acts]);
            using (cache) Assert.Equal(new long[] { 2, 10, 64 }, cache[acts].shape);
            // Steering (a technique written for model hooks) on feature 5: the same as adding 4 × W_dec[5] to the residual.
            using var direction = torch.zeros(64);
            direction[5] = 1f;
            Tensor steered;
            using (SharpLens.Techniques.Steering.Apply(model, acts, direction, 4.0)) steered = model.Run(tokens);
            var expected = model.RunWithHooks(tokens, [(Hook, (x, _) => x + 4.0 * sae.W_dec[5])]);
            Assert.True((steered - expected).abs().max().item<float>() < 1e-4f);
            Assert.True((steered - clean).abs().max().item<float>() > 1e-2f);
        }
        Assert.False(model.HookDict.ContainsKey(acts)); // gone with the splice
        Assert.Throws<HookNotFoundException>(() => model.GetHookPoint(acts));
    }

    [Fact]
    public void Attribution_patching_reaches_features_and_they_add_up_with_the_error_to_the_hook()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var g = new Generator(21);
        var clean = torch.randint(0, model.Config.DVocab, [4, 8], generator: g);
        var corrupted = clean.clone();
        corrupted[.., 2] = torch.randint(0, model.Config.DVocab, [4], generator: g); // change one early token
        using var pairs = new SharpLens.Techniques.Patching.PromptPairs(clean, corrupted,
            torch.randint(0, model.Config.DVocab, [4], generator: g), torch.randint(0, model.Config.DVocab, [4], generator: g));
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);
        using var _ = spliced.AddSae(sae, useErrorTerm: true);

        using var features = SharpLens.Techniques.Patching.AttributionPatching.AtHook(model, pairs, $"{Hook}.hook_sae_acts_post");
        using var error = SharpLens.Techniques.Patching.AttributionPatching.AtHook(model, pairs, $"{Hook}.hook_sae_error");
        using var output = SharpLens.Techniques.Patching.AttributionPatching.AtHook(model, pairs, $"{Hook}.hook_sae_output");
        Assert.Equal(new long[] { 8, 64 }, features.Values.shape); // [pos, d_sae]
        // output = acts · W_dec + b_dec + error, linear: the features' and the error's attributions add up to the output's.
        var total = features.Values.sum(1) + error.Values.sum(1);
        var expected = output.Values.sum(1);
        Assert.True((total - expected).abs().max().item<float>() < 1e-3f * (1 + expected.abs().max().item<float>()));
        Assert.True(features.Values.abs().max().item<float>() > 0); // the changed token reaches some feature
    }

    [Fact]
    public void Cache_records_sae_activations_under_hookedsaetransformer_names()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);
        using var _ = spliced.AddSae(sae, useErrorTerm: true);

        var (_, cache) = spliced.RunWithCache(tokens);
        using (cache)
        {
            foreach (var suffix in new[] { "hook_sae_input", "hook_sae_acts_pre", "hook_sae_acts_post", "hook_sae_recons", "hook_sae_error", "hook_sae_output" })
                Assert.True(cache.ContainsKey($"{Hook}.{suffix}"), $"{Hook}.{suffix} missing");
            var resid = cache[Hook];
            var acts = cache[$"{Hook}.hook_sae_acts_post"];
            Assert.Equal(new long[] { 2, 10, 64 }, acts.shape);
            // Float32 rounding differs by GEMM kernel and shape (the spliced SAE and Encode may not take the same path on
            // every CPU), so the bound is relative to the activations' size.
            float diff = (acts - sae.Encode(resid)).abs().max().item<float>(), size = acts.abs().max().item<float>();
            Assert.True(diff < 1e-6f * (1 + size), $"max |acts - Encode(resid)| = {diff} (max |acts| {size})");
            Assert.True((cache[$"{Hook}.hook_sae_output"] - resid).abs().max().item<float>() < 1e-5f);
            Assert.True(acts.gt(0).any().item<bool>());
        }
    }

    [Fact]
    public void Ablating_a_feature_changes_logits_as_subtracting_its_decoder_contribution()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);

        // The most active feature, so the ablation matters.
        var (_, cache) = model.RunWithCache(tokens, [Hook]);
        var features = sae.Encode(cache[Hook]); // [2, 10, 64]
        int j = (int)features.sum([0, 1]).argmax().item<long>();
        var contribution = features[.., .., j..(j + 1)] * sae.W_dec[j]; // [2, 10, d_model]
        var expected = model.RunWithHooks(tokens, [(Hook, (x, _) => x - contribution)]);

        using var __ = spliced.AddSae(sae, useErrorTerm: true);
        HookFunction ablate = (acts, _) => { var a = acts.clone(); a[.., .., j] = 0; return a; };
        var ablated = spliced.RunWithHooks(tokens, [($"{Hook}.hook_sae_acts_post", ablate)]);
        Assert.True((ablated - expected).abs().max().item<float>() < 1e-5f);
        Assert.True((ablated - model.Run(tokens)).abs().max().item<float>() > 1e-3f, "the ablation should matter");
        cache.Dispose();
    }

    [Fact]
    public void Spliced_transcoder_reads_its_input_hook_and_replaces_its_output_hook()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        const string input = "blocks.0.ln2.hook_normalized", output = "blocks.0.hook_mlp_out";
        using var transcoder = RandomSae(new SaeConfig(SaeArchitecture.SkipTranscoder, 32, 48)
            { ApplyBDecToInput = false, Metadata = new() { HookName = input, HookNameOut = output } });
        var spliced = new HookedSaeTransformer(model);
        var clean = model.Run(tokens);

        using (spliced.AddSae(transcoder, useErrorTerm: false))
        {
            var (_, cache) = spliced.RunWithCache(tokens, n => n == input || n == output);
            Assert.True((cache[output] - transcoder.Forward(cache[input])).abs().max().item<float>() < 1e-5f);
            cache.Dispose();
        }
        using (spliced.AddSae(transcoder, useErrorTerm: true))
            Assert.True((spliced.Run(tokens) - clean).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Hook_z_sae_flattens_heads_and_splices_back_in_their_shape()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, model.Config.DVocab);
        const string z = "blocks.0.attn.hook_z";
        using var sae = RandomSae(new SaeConfig(SaeArchitecture.Standard, 4 * 8, 48) { ReshapeHookZ = true, Metadata = new() { HookName = z } });
        var (_, cache) = model.RunWithCache(tokens, [z]);
        var activation = cache[z]; // [2, 10, 4, 8]
        var expected = ((activation.flatten(-2) - sae.b_dec).matmul(sae.W_enc) + sae.b_enc!).relu(); // [2, 10, 48]
        Assert.True((sae.Encode(activation) - expected).abs().max().item<float>() < 1e-6f);
        Assert.Equal(activation.shape, sae.Forward(activation).shape);

        var spliced = new HookedSaeTransformer(model);
        var clean = model.Run(tokens);
        using (spliced.AddSae(sae, useErrorTerm: true))
            Assert.True((spliced.Run(tokens) - clean).abs().max().item<float>() < 1e-5f);
        cache.Dispose();
    }

    [Fact]
    public void Misspelt_sae_hook_name_lists_the_closest_ones()
    {
        using var model = TestModels.RandomModel();
        using var sae = RandomSae(Standard());
        var spliced = new HookedSaeTransformer(model);
        using var _ = spliced.AddSae(sae);
        var e = Assert.Throws<HookNotFoundException>(() => spliced.Hooks([($"{Hook}.hook_sae_acts_pots", (x, _) => null)]));
        Assert.Contains($"{Hook}.hook_sae_acts_post", e.Message);
    }
}
