using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

public class InputValidationTests
{
    [Fact]
    public void A_token_id_at_or_above_d_vocab_is_refused_naming_the_id_and_position()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = tensor(new long[] { 1, 2, 50, 3 }).unsqueeze(0);
        var e = Assert.Throws<ModelInputException>(() => model.Run(tokens));
        Assert.Equal("tokens", e.ParamName);
        Assert.Contains("Token id 50", e.Message);
        Assert.Contains("position 2", e.Message);
        Assert.Contains("d_vocab = 50", e.Message);
        Assert.Throws<ModelInputException>(() => model.Run(tensor(new long[] { -1 })));
    }

    [Fact]
    public void A_sequence_longer_than_n_ctx_is_refused()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var e = Assert.Throws<ModelInputException>(() => model.Run(TestModels.RandomTokens(1, 25, 50)));
        Assert.Contains("n_ctx = 24", e.Message);
        Assert.Contains("25 tokens", e.Message);
    }

    [Fact]
    public void Float_tokens_and_a_mismatched_mask_are_refused()
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        Assert.Throws<ModelInputException>(() => model.Run(ones(1, 4)));
        var e = Assert.Throws<ModelInputException>(() => model.Run(TestModels.RandomTokens(2, 4, 50), ones(2, 5)));
        Assert.Equal("attentionMask", e.ParamName);
    }

    [Fact]
    public void Config_round_trips_through_json_with_TransformerLens_field_names()
    {
        var cfg = TestModels.Tiny();
        string json = cfg.ToJson();
        Assert.Contains("\"d_model\": 32", json);
        Assert.Contains("\"n_layers\": 2", json);
        Assert.Contains("\"act_fn\": \"gelu_new\"", json);
        Assert.Equal(cfg, ModelConfig.FromJson(json));
    }

    [Fact]
    public void Same_seed_gives_the_same_weights()
    {
        using var scope = NewDisposeScope();
        var a = new HookedTransformer(TestModels.Tiny(), seed: 3);
        var b = new HookedTransformer(TestModels.Tiny(), seed: 3);
        var tokens = TestModels.RandomTokens(1, 5, 50);
        Assert.Equal(0f, (a.Run(tokens) - b.Run(tokens)).abs().max().item<float>());
    }
}
