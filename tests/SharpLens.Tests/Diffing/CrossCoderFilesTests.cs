using SharpLens.Diffing;
using SharpLens.Interop;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Diffing;

public class CrossCoderFilesTests
{
    static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "crosscoder", name);

    [Theory]
    [InlineData("batchtopk", CrossCoderArchitecture.BatchTopK, CodeNormalization.Crosscoder, 2)]
    [InlineData("l1-mixed", CrossCoderArchitecture.L1, CodeNormalization.Mixed, 3)]
    [InlineData("kissane", CrossCoderArchitecture.L1, CodeNormalization.Crosscoder, 2)]
    public void Folders_written_by_an_independent_script_encode_and_decode_as_it_computed(string name, CrossCoderArchitecture architecture, CodeNormalization normalization, int models)
    {
        using var scope = torch.NewDisposeScope();
        using var cc = CrossCoderFiles.Load(Fixture(name));
        Assert.Equal(architecture, cc.Config.Architecture);
        Assert.Equal(normalization, cc.Config.CodeNormalization);
        Assert.Equal(models, cc.NModels);
        var x = NumpyFiles.LoadNpy(Path.Combine(Fixture(name), "X.npy"));
        var expectedF = NumpyFiles.LoadNpy(Path.Combine(Fixture(name), "f.npy"));
        var expectedRecon = NumpyFiles.LoadNpy(Path.Combine(Fixture(name), "recon.npy"));
        using var _ = torch.no_grad();
        var f = cc.Encode(x);
        var recon = cc.Decode(f);
        Assert.True(f.gt(0).sum().item<long>() > 0);
        Assert.Equal(expectedF.gt(0).data<bool>().ToArray(), f.gt(0).data<bool>().ToArray()); // the same latents kept
        Assert.True((f - expectedF).abs().max().item<float>() < 1e-5, $"encode differs by {(f - expectedF).abs().max().item<float>()}");
        Assert.True((recon - expectedRecon).abs().max().item<float>() < 1e-5, $"decode differs by {(recon - expectedRecon).abs().max().item<float>()}");
    }

    [Fact]
    public void A_saved_crosscoder_reads_back_bit_identical_and_saves_the_same_bytes()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-cc-{Guid.NewGuid():N}");
        try
        {
            using var original = CrossCoderFiles.Load(Fixture("batchtopk"));
            CrossCoderFiles.Save(original, folder);
            using var loaded = CrossCoderFiles.Load(folder);
            foreach (var ((name, a), (_, b)) in original.StateDict().Zip(loaded.StateDict()))
                Assert.True(a.bytes.SequenceEqual(b.bytes), $"{name} changed on the round trip");
            string again = folder + "-again";
            CrossCoderFiles.Save(loaded, again);
            Assert.Equal(File.ReadAllBytes(Path.Combine(folder, "model.safetensors")), File.ReadAllBytes(Path.Combine(again, "model.safetensors")));
            Assert.Equal(File.ReadAllText(Path.Combine(folder, "config.json")), File.ReadAllText(Path.Combine(again, "config.json")));
            Directory.Delete(again, true);
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
    }

    [Fact]
    public void A_config_that_disagrees_with_the_tensors_names_both()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-cc-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.Copy(Path.Combine(Fixture("batchtopk"), "model.safetensors"), Path.Combine(folder, "model.safetensors"));
            File.WriteAllText(Path.Combine(folder, "config.json"), File.ReadAllText(Path.Combine(Fixture("batchtopk"), "config.json")).Replace("\"dict_size\": 32", "\"dict_size\": 64"));
            var e = Assert.Throws<CrossCoderFileException>(() => CrossCoderFiles.Load(folder));
            Assert.IsAssignableFrom<SharpLensException>(e);
            Assert.Contains("dict_size", e.Message);
            Assert.Contains("64", e.Message);
            Assert.Contains("[2, 8, 32]", e.Message);
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void A_decoder_whose_shape_disagrees_with_the_encoder_is_refused()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-cc-{Guid.NewGuid():N}");
        try
        {
            using (var cc = new CrossCoder(new CrossCoderConfig(4, 10) { K = 2 }))
            {
                CrossCoderFiles.Save(cc, folder);
                var tensors = cc.StateDict().Select(kv => kv.Key == "decoder.weight" ? new KeyValuePair<string, Tensor>(kv.Key, torch.zeros(2, 11, 4)) : kv).ToList();
                SharpLens.Loading.SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors);
            }
            var e = Assert.Throws<CrossCoderFileException>(() => CrossCoderFiles.Load(folder));
            Assert.Contains("decoder.weight", e.Message);
            Assert.Contains("[2, 11, 4]", e.Message);
            Assert.Contains("[2, 10, 4]", e.Message);
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, true); }
    }

    static HookedTransformer Tiny(int dModel, int vocab, int layers = 1) => new(new ModelConfig
    {
        DModel = dModel, NLayers = layers, NHeads = 2, DHead = dModel / 2, DMlp = 2 * dModel, DVocab = vocab, NCtx = 8,
        ActFn = Activation.Gelu, NormalizationType = Normalization.LN, PositionalEmbeddingType = PositionalEmbedding.Learned,
    }.Validated(), seed: 1);

    [Fact]
    public void Models_that_cannot_be_paired_are_refused_naming_both_sides()
    {
        using var a = Tiny(16, 20);
        using var wider = Tiny(24, 20);
        using var otherVocab = Tiny(16, 21);
        using var deeper = Tiny(16, 20, layers: 2);
        var width = Assert.Throws<DiffingException>(() => PairedActivations.Check([a, wider], "blocks.0.hook_resid_post", ["A", "B"]));
        Assert.Contains("16 wide in A", width.Message);
        Assert.Contains("24 wide in B", width.Message);
        var vocab = Assert.Throws<DiffingException>(() => PairedActivations.Check([a, otherVocab], "blocks.0.hook_resid_post", ["A", "B"]));
        Assert.Contains("A reads 20", vocab.Message);
        Assert.Contains("B reads 21", vocab.Message);
        var hook = Assert.Throws<DiffingException>(() => PairedActivations.Check([a, deeper], "blocks.1.hook_resid_post", ["A", "B"]));
        Assert.Contains("A has no hook 'blocks.1.hook_resid_post'", hook.Message);
        Assert.Contains("B has it", hook.Message);
    }
}
