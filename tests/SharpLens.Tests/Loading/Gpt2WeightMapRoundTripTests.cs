using SharpLens.Loading;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;
using static SharpLens.Tests.Loading.LoadingTestKit;

namespace SharpLens.Tests.Loading;

/// <summary>GPT-2's one weight map, walked both ways: a checkpoint made by Hugging Face loads, saves and loads back unchanged.</summary>
public class Gpt2WeightMapRoundTripTests
{
    /// <summary>The causal-mask buffers old GPT-2 files carry beside the weights; not parameters, so never saved.</summary>
    static bool IsBuffer(string name) => name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal);

    [Theory]
    [InlineData("gpt2-tiny-tied", ScalarType.Float32)]       // bare GPT2Model names, tied, with mask buffers
    [InlineData("gpt2-tiny-untied-f16", ScalarType.Float16)] // GPT2LMHeadModel names under transformer., lm_head stored, float16
    public void A_hugging_face_checkpoint_saved_back_has_its_names_shapes_dtypes_and_bytes(string fixture, ScalarType dtype)
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var loaded = HookedTransformer.FromPretrained(Fixture(fixture), new ModelOptions(DType: dtype), processing: WeightProcessingOptions.None);
        loaded.SaveHuggingFace(dir.Path);

        using var original = SafeTensorsFile.Open(Path.Combine(Fixture(fixture), "model.safetensors"));
        using var saved = SafeTensorsFile.Open(dir.File("model.safetensors"));
        string Canonical(string name) => name.StartsWith("transformer.", StringComparison.Ordinal) || name == "lm_head.weight" ? name : "transformer." + name;
        var expected = original.Names.Where(n => !IsBuffer(n)).ToDictionary(Canonical, n => n);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), saved.Names.Order(StringComparer.Ordinal));
        foreach (var name in saved.Names)
        {
            var (want, got) = (original.Info(expected[name]), saved.Info(name));
            Assert.True(want.Shape.SequenceEqual(got.Shape), $"{name}: saved as {ShapeText.Of(got.Shape)}, Hugging Face stores {ShapeText.Of(want.Shape)}");
            Assert.Equal(want.DType, got.DType);
            Assert.True(original.Read(expected[name]).contiguous().bytes.SequenceEqual(saved.Read(name).contiguous().bytes), $"{name}: the saved bytes differ from the checkpoint's");
        }

        using var reloaded = HookedTransformer.FromPretrained(dir.Path, new ModelOptions(DType: dtype), processing: WeightProcessingOptions.None);
        var first = loaded.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var second = reloaded.named_parameters().ToList();
        Assert.Equal(first.Count, second.Count);
        foreach (var (name, p) in second)
            Assert.True(p.contiguous().bytes.SequenceEqual(first[name].contiguous().bytes), $"parameter '{name}' changed in load → save → load");
    }
}
