using SharpLens.Interop;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes;

/// <summary>SAELens folders and Gemma Scope params.npz written by scripts/golden/make_sae_fixtures.py (numpy, float64).</summary>
public class SaeFilesTests
{
    internal static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "sae");

    static string PathOf(string name) =>
        name == "gemma_scope" ? Path.Combine(Fixtures, name, "params.npz") : Path.Combine(Fixtures, name);

    [Theory]
    [InlineData("standard", SaeArchitecture.Standard)]
    [InlineData("standard_layer_norm", SaeArchitecture.Standard)]
    [InlineData("standard_norm_rescale", SaeArchitecture.Standard)]
    [InlineData("topk_pre6", SaeArchitecture.TopK)]
    [InlineData("jumprelu", SaeArchitecture.JumpReLU)]
    [InlineData("gated", SaeArchitecture.Gated)]
    [InlineData("transcoder", SaeArchitecture.Transcoder)]
    [InlineData("skip_transcoder", SaeArchitecture.SkipTranscoder)]
    [InlineData("gemma_scope", SaeArchitecture.JumpReLU)]
    public void Loaded_sae_reproduces_the_reference_features_and_output(string name, SaeArchitecture architecture)
    {
        using var scope = torch.NewDisposeScope();
        using var sae = SaeFiles.Load(PathOf(name));
        Assert.Equal(architecture, sae.Config.Architecture);
        var x = NumpyFiles.LoadNpy(Path.Combine(Fixtures, "X.npy"));
        var features = NumpyFiles.LoadNpy(Path.Combine(Fixtures, name, "features.npy"));
        var output = NumpyFiles.LoadNpy(Path.Combine(Fixtures, name, "output.npy"));
        Assert.True(features.gt(0).any().item<bool>(), "the fixture should have active features");

        Assert.True((sae.Encode(x) - features).abs().max().item<float>() < 1e-5f);
        Assert.True((sae.Forward(x) - output).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Pre_6_config_reads_topk_and_hook_point_from_the_top_level()
    {
        using var sae = SaeFiles.Load(PathOf("topk_pre6"));
        Assert.Equal(5, sae.Config.K);
        Assert.Equal("blocks.0.hook_resid_post", sae.Config.Metadata.HookName);
        Assert.Equal(128, sae.Config.Metadata.ContextSize);
    }

    [Fact]
    public void Gemma_scope_sae_does_not_subtract_b_dec_from_its_input()
    {
        using var sae = SaeFiles.Load(PathOf("gemma_scope"));
        Assert.False(sae.Config.ApplyBDecToInput);
    }

    [Theory]
    [InlineData("standard")]
    [InlineData("topk_pre6")]
    [InlineData("jumprelu")]
    [InlineData("gated")]
    [InlineData("skip_transcoder")]
    [InlineData("standard_layer_norm")]
    public void Saved_sae_reads_back_identically(string name)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-{Guid.NewGuid():N}");
        try
        {
            using var scope = torch.NewDisposeScope();
            using var sae = SaeFiles.Load(PathOf(name));
            var sparsity = SaeFiles.LoadSparsity(PathOf(name));
            SaeFiles.Save(sae, folder, sparsity);
            using var back = SaeFiles.Load(folder);
            Assert.Equal(sae.Config, back.Config);
            foreach (var ((n, a), (_, b)) in sae.named_parameters().Zip(back.named_parameters()))
                Assert.True(a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>(), $"{n} changed on the round trip");
            if (sparsity is not null) Assert.True(sparsity.eq(SaeFiles.LoadSparsity(folder)!).all().item<bool>());
            Assert.DoesNotContain(Directory.GetFiles(folder), f => f.Contains(".tmp"));
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Gemma_scope_npz_reads_back_identically()
    {
        string file = Path.Combine(Path.GetTempPath(), $"sharplens-gemma-{Guid.NewGuid():N}.npz");
        try
        {
            using var sae = SaeFiles.Load(PathOf("gemma_scope"));
            SaeFiles.SaveGemmaScope(sae, file);
            using var back = SaeFiles.Load(file);
            foreach (var ((n, a), (_, b)) in sae.named_parameters().Zip(back.named_parameters()))
                Assert.True(a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>(), $"{n} changed on the round trip");
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void Wrong_tensor_shape_names_the_file_the_tensor_and_both_shapes()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-{Guid.NewGuid():N}");
        try
        {
            Directory.CreateDirectory(folder);
            foreach (var f in Directory.GetFiles(PathOf("standard"))) File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
            File.WriteAllText(Path.Combine(folder, "cfg.json"), File.ReadAllText(Path.Combine(folder, "cfg.json")).Replace("\"d_sae\": 40", "\"d_sae\": 41"));
            var e = Assert.Throws<SaeFileException>(() => SaeFiles.Load(folder));
            Assert.Contains("sae_weights.safetensors", e.Message);
            Assert.Contains("W_enc", e.Message);
            Assert.Contains("[16, 41]", e.Message);
            Assert.Contains("[16, 40]", e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Unknown_architecture_is_named_with_the_supported_ones()
    {
        var e = Assert.Throws<SaeFileException>(() => SaeFiles.ParseConfig("cfg.json", """{"architecture": "matryoshka", "d_in": 4, "d_sae": 8}"""));
        Assert.Contains("matryoshka", e.Message);
        Assert.Contains("jumprelu", e.Message);
    }
}
