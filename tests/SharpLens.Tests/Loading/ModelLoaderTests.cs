using SharpLens.Hooks;
using SharpLens.Loading;
using SharpLens.Loading.Llama2c;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using TorchSharp;

namespace SharpLens.Tests.Loading;

/// <summary>The one library loader resolves every kind of model string the CLI's --model takes.</summary>
public sealed class ModelLoaderTests
{
    static readonly WeightProcessingOptions Raw = WeightProcessingOptions.None;

    [Theory]
    [InlineData("gpt2-tiny-tied")]
    [InlineData("zoo/llama-tied-f32")]
    [InlineData("zoo/neox-parallel-f32")]
    public void A_decoder_folder_or_a_file_in_it_loads_as_the_family_loader_loads_it(string fixture)
    {
        using var scope = torch.NewDisposeScope();
        string folder = LoadingTestKit.Fixture(fixture);
        using var expected = HookedTransformer.FromPretrained(folder, processing: Raw);
        var tokens = TestModels.RandomTokens(1, 5, Math.Min(50, expected.Config.DVocab));
        var want = expected.Run(tokens);
        foreach (var path in new[] { folder, Path.Combine(folder, "config.json") })
        {
            using var loaded = ModelLoader.Load(path, new ModelLoadOptions { Processing = Raw });
            var decoder = Assert.IsType<HookedTransformer>(loaded);
            Assert.True((decoder.Run(tokens) - want).abs().max().item<float>() == 0f, path);
        }
    }

    [Fact]
    public void A_bert_folder_is_an_encoder_and_a_decoder_caller_is_told_so()
    {
        using var scope = torch.NewDisposeScope();
        string folder = LoadingTestKit.Fixture(Path.Combine("zoo", "bert-tiny-f32"));
        using var loaded = ModelLoader.Load(folder);
        var encoder = Assert.IsType<HookedEncoder>(loaded);
        using var expected = HookedEncoder.FromPretrained(folder);
        var tokens = TestModels.RandomTokens(1, 5, 50);
        Assert.True((encoder.Run(tokens) - expected.Run(tokens)).abs().max().item<float>() == 0f);
        var e = Assert.Throws<NotADecoderException>(() => ModelLoader.LoadDecoder(folder));
        Assert.Contains("encoder", e.Message);
        Assert.IsAssignableFrom<SharpLensException>(e);
    }

    [Fact]
    public void A_llama2c_bin_loads_as_the_llama2c_converter_loads_it()
    {
        using var scope = torch.NewDisposeScope();
        string file = LoadingTestKit.Fixture(Path.Combine("llama2c", "tiny-gqa-unshared.bin"));
        using var expected = Llama2cConversion.Load(file, processing: Raw);
        using var loaded = ModelLoader.LoadDecoder(file, new ModelLoadOptions { Processing = Raw });
        var tokens = TestModels.RandomTokens(1, 5, Math.Min(50, expected.Config.DVocab));
        Assert.True((loaded.Run(tokens) - expected.Run(tokens)).abs().max().item<float>() == 0f);
    }

    [Fact]
    public void Named_models_include_the_organisms_and_a_registered_one_loads_by_name()
    {
        Assert.Contains("induction", ModelLoader.Named.Keys);
        Assert.Contains("latent", ModelLoader.Named.Keys);
        HookedRootModule? built = null;
        ModelLoader.Register(new NamedModel("loader-test-model", "a random model for this test",
            options => built = new HookedTransformer(TestModels.Tiny(), options.Model, seed: 5)));
        using var loaded = ModelLoader.Load("loader-test-model");
        Assert.Same(built, loaded);
    }

    [Fact]
    public void An_unknown_name_is_an_error_naming_it_and_the_closest_known_names()
    {
        var e = Assert.Throws<UnknownModelException>(() => ModelLoader.Load("inductoin"));
        Assert.Contains("'inductoin'", e.Message);
        Assert.Contains("Did you mean", e.Message);
        Assert.Contains("induction", e.Message);
    }
}
