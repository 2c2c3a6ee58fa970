using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

public class WeightProcessingTests
{
    static readonly long[] Tokens = [3, 17, 42, 8, 8, 60, 1, 29, 33, 5, 12];

    static ModelConfig Gpt2Shaped(Normalization norm = Normalization.LN, bool attnOnly = false) => new()
    {
        DModel = 32, NLayers = 2, NHeads = 4, DHead = 8, DMlp = attnOnly ? 0 : 128, DVocab = 64, NCtx = 16,
        NormalizationType = norm, AttnOnly = attnOnly, ActFn = Activation.GeluNew,
    };

    static HookedTransformer RandomModel(ModelConfig config)
    {
        var model = new HookedTransformer(config, seed: 21);
        PaddingTests.RandomizeNormsAndBiases(model, seed: 22);
        return model;
    }

    static Tensor P(HookedTransformer model, string name) =>
        model.get_parameter(name) ?? throw new KeyNotFoundException($"{model.Config.ModelName} has no parameter {name}");

    static Tensor LogProbs(HookedTransformer model) => model.Run(tensor(Tokens).unsqueeze(0)).log_softmax(-1); // [1, pos, d_vocab]

    static double LogProbGap(HookedTransformer a, HookedTransformer b) => (LogProbs(a) - LogProbs(b)).abs().max().item<float>();

    public static TheoryData<string> Steps => new() { "fold_ln", "center_writing", "center_unembed", "fold_value_biases", "all" };

    static WeightProcessingOptions Only(string step) => step switch
    {
        "all" => WeightProcessingOptions.Default,
        "fold_ln" => WeightProcessingOptions.None with { FoldLayerNorm = true },
        "center_writing" => WeightProcessingOptions.None with { CenterWritingWeights = true },
        "center_unembed" => WeightProcessingOptions.None with { CenterUnembed = true },
        "fold_value_biases" => WeightProcessingOptions.None with { FoldValueBiases = true },
        _ => throw new ArgumentException(step),
    };

    [Theory]
    [MemberData(nameof(Steps))]
    public void Processed_weights_give_the_same_log_probs(string step)
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped());
        var processed = model.ProcessWeights(Only(step));
        double gap = LogProbGap(model, processed);
        Assert.True(gap < 1e-4, $"{step}: log-probs moved by {gap}");
        // The step did change the weights: equal log-probs are not from an untouched copy.
        double moved = model.named_parameters().Where(p => processed.named_parameters().Any(q => q.name == p.name))
            .Max(p => (p.parameter - P(processed, p.name)).abs().max().item<float>());
        Assert.True(moved > 1e-3, $"{step}: no weight changed (largest change {moved})");
    }

    [Theory]
    [MemberData(nameof(Steps))]
    public void Attention_only_models_process_with_the_same_log_probs(string step)
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped(attnOnly: true));
        double gap = LogProbGap(model, model.ProcessWeights(Only(step)));
        Assert.True(gap < 1e-4, $"attn-only, {step}: log-probs moved by {gap}");
    }

    [Fact]
    public void Folding_turns_every_norm_into_LNPre_with_no_weights()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped());
        var folded = model.ProcessWeights(WeightProcessingOptions.None with { FoldLayerNorm = true });
        Assert.Equal(Normalization.LNPre, folded.Config.NormalizationType);
        Assert.Equal(Normalization.LNPre, folded.Config.FinalNormalization);
        Assert.True(folded.Config.WeightsProcessed);
        var names = folded.named_parameters().Select(p => p.name).ToList();
        Assert.DoesNotContain(names, n => n.Contains(".ln1.") || n.Contains(".ln2.") || n.StartsWith("ln_final."));
        Assert.Equal(model.named_parameters().Count() - 2 * (2 * 2 + 1), names.Count);
        Assert.Contains("blocks.1.ln2.hook_scale", folded.HookDict.Keys);
    }

    [Fact]
    public void Centring_leaves_writing_weights_and_unembed_with_zero_mean()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped());
        var processed = model.ProcessWeights();
        double Mean(string name, long dim) => P(processed, name).mean([dim]).abs().max().item<float>();
        Assert.True(P(model, "blocks.0.mlp.W_out").mean([-1]).abs().max().item<float>() > 1e-3); // was not centred
        foreach (var name in new[] { "embed.W_E", "pos_embed.W_pos", "blocks.0.attn.W_O", "blocks.1.attn.b_O", "blocks.0.mlp.W_out", "blocks.1.mlp.b_out" })
            Assert.True(Mean(name, -1) < 1e-6, $"{name} has mean {Mean(name, -1)} over d_model");
        // Reading weights after an LNPre lose their d_model mean, and W_U its vocab mean.
        Assert.True(Mean("blocks.0.attn.W_Q", -2) < 1e-6);
        Assert.True(Mean("blocks.1.mlp.W_in", 0) < 1e-6);
        Assert.True(Mean("unembed.W_U", -1) < 1e-6);
        Assert.True(Math.Abs(P(processed, "unembed.b_U").mean().item<float>()) < 1e-6);
        Assert.Equal(0f, P(processed, "blocks.1.attn.b_V").abs().max().item<float>());
    }

    [Fact]
    public void No_processing_leaves_weights_and_config_untouched()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped());
        var copy = model.ProcessWeights(WeightProcessingOptions.None);
        Assert.Equal(model.Config, copy.Config);
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.equal(P(copy, name)).all().item<bool>(), $"{name} changed");
    }

    [Fact]
    public void Processing_does_not_modify_the_original_model()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped());
        var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.clone());
        model.ProcessWeights();
        foreach (var (name, p) in model.named_parameters())
            Assert.True(p.equal(before[name]).all().item<bool>(), $"{name} of the original changed");
    }

    [Fact]
    public void Models_without_normalization_skip_folding_and_centring_but_keep_their_log_probs()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped(Normalization.None));
        var state = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var result = WeightProcessing.Process(model.Config, state);
        Assert.Equal(2, result.Skipped.Count);
        Assert.Contains(result.Skipped, s => s.StartsWith("FoldLayerNorm"));
        Assert.Contains(result.Skipped, s => s.StartsWith("CenterWritingWeights"));
        Assert.Equal(Normalization.None, result.Config.NormalizationType);

        var processed = model.ProcessWeights();
        double gap = LogProbGap(model, processed);
        Assert.True(gap < 1e-4, $"Normalization.None: log-probs moved by {gap}");
        // Centring W_E here would have changed the output, so it must not have happened.
        Assert.True(P(processed, "embed.W_E").equal(P(model, "embed.W_E")).all().item<bool>());
    }

    [Fact]
    public void Already_folded_LNPre_models_only_centre()
    {
        using var scope = NewDisposeScope();
        var model = RandomModel(Gpt2Shaped(Normalization.LNPre));
        var processed = model.ProcessWeights();
        Assert.True(LogProbGap(model, processed) < 1e-4);
        Assert.True(P(processed, "embed.W_E").mean([-1]).abs().max().item<float>() < 1e-6);
    }
}
