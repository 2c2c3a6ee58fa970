using System.Text.Json;
using SharpLens.Loading;
using SharpLens.Models;
using TorchSharp;
using Xunit.Abstractions;
using static SharpLens.Tests.Loading.LoadingTestKit;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

/// <summary>
/// Hugging Face folders of every decoder family, random weights, against scripts/golden/make_zoo_golden.py's own
/// float64 forward (written independently of SharpLens from the Hugging Face modeling code's semantics).
/// </summary>
public class ModelZooGoldenTests(ITestOutputHelper output)
{
    public static TheoryData<string, string> Fixtures()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in new[] { "llama-tied-f32", "llama-untied-bf16", "llama3-scaled-f32", "mistral-sliding-f32", "qwen2-f32", "neox-parallel-f32",
                                     "neox-sequential-f16", "gemma-f32", "gemma2-f32" })
            foreach (var input in new[] { "single", "batch" }) data.Add(name, input);
        return data;
    }

    static string Zoo(string name) => Fixture(Path.Combine("zoo", name));

    /// <summary>A golden.json input of a zoo fixture: its tokens and the reference log-probs (also used by the second zoo's tests).</summary>
    internal static (Tensor Tokens, Tensor LogProbs) Golden(string fixture, string input)
    {
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(Zoo(fixture), "golden.json")));
        var entry = golden.RootElement.GetProperty(input);
        var rows = entry.GetProperty("tokens").EnumerateArray().Select(r => r.EnumerateArray().Select(t => t.GetInt64()).ToArray()).ToArray();
        var tokens = torch.tensor(rows.SelectMany(r => r).ToArray()).reshape(rows.Length, rows[0].Length);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var logits = torch.tensor(entry.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray()).reshape(shape);
        Assert.True(logits.std().item<double>() > 0.1, "golden logits should not be trivially small");
        return (tokens, logits.log_softmax(-1));
    }

    double Compare(HookedTransformer model, string fixture, string input, string label) => Compare(model, fixture, input, label, output);

    /// <summary>Max |log-prob difference| between the model and a fixture's golden log-probs (shapes asserted equal), written to <paramref name="log"/>.</summary>
    internal static double Compare(HookedTransformer model, string fixture, string input, string label, ITestOutputHelper log)
    {
        var (tokens, expected) = Golden(fixture, input);
        var logProbs = model.Run(tokens).to(ScalarType.Float64).log_softmax(-1);
        Assert.Equal(expected.shape, logProbs.shape);
        double diff = MaxAbsDiff(logProbs, expected);
        log.WriteLine($"{fixture}/{input} {label}: max |log-prob diff| = {diff:E2}");
        return diff;
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Unprocessed_log_probs_match_the_independent_reference_within_1e_4(string fixture, string input)
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Zoo(fixture), processing: WeightProcessingOptions.None);
        double diff = Compare(model, fixture, input, "unprocessed");
        Assert.True(diff <= 1e-4, $"{fixture}/{input}: max |SharpLens − reference| log-prob = {diff:E2}, above 1e-4");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Processed_log_probs_match_the_independent_reference_within_1e_4(string fixture, string input)
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Zoo(fixture));
        Assert.True(model.Config.WeightsProcessed);
        Assert.Contains(model.Config.NormalizationType, new[] { Normalization.LNPre, Normalization.RMSPre });
        double diff = Compare(model, fixture, input, "processed");
        Assert.True(diff <= 1e-4, $"{fixture}/{input}: max |SharpLens processed − reference| log-prob = {diff:E2}, above 1e-4");
    }

    [Theory]
    [InlineData("llama-tied-f32", 2, true)]
    [InlineData("mistral-sliding-f32", 2, false)]
    [InlineData("gemma2-f32", 2, false)]
    public void Configs_read_as_their_families_define_them(string fixture, int kvHeads, bool tied)
    {
        var config = HuggingFaceModels.ReadConfig(File.ReadAllText(Path.Combine(Zoo(fixture), "config.json")));
        Assert.Equal(kvHeads, config.KeyValueHeads);
        Assert.Equal(PositionalEmbedding.Rotary, config.PositionalEmbeddingType);
        Assert.Equal(Normalization.RMS, config.NormalizationType);
        Assert.True(config.GatedMlp);
        Assert.Equal(tied, config.TiedEmbeddings);
        if (fixture == "gemma2-f32")
        {
            Assert.Equal(["local", "global", "local"], config.AttnTypes!);
            Assert.Equal(Math.Sqrt(24), config.AttentionScale, 12);
            Assert.Equal(5.0, config.AttnScoresSoftCap);
            Assert.Equal(3.0, config.OutputLogitsSoftCap);
        }
    }

    [Fact]
    public void Llama3_rope_scaling_reads_into_the_ntk_by_parts_fields_and_changes_the_logits()
    {
        string json = File.ReadAllText(Path.Combine(Zoo("llama3-scaled-f32"), "config.json"));
        var config = HuggingFaceModels.ReadConfig(json);
        Assert.True(config.UseNtkByPartsRope);
        Assert.Equal(8.0, config.NtkByPartsFactor);
        Assert.Equal(512, config.NtkOriginalCtxLen);
        // Without the scaling, the same weights give other logits: the fixture really exercises it.
        var unscaled = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        unscaled["rope_scaling"] = null;
        using var scope = torch.NewDisposeScope();
        using var a = HookedTransformer.FromHuggingFace(json, HuggingFaceTensorSource.From(Tensors("llama3-scaled-f32"), "fixture"), processing: WeightProcessingOptions.None);
        using var b = HookedTransformer.FromHuggingFace(unscaled.ToJsonString(), HuggingFaceTensorSource.From(Tensors("llama3-scaled-f32"), "fixture"), processing: WeightProcessingOptions.None);
        var tokens = torch.arange(1, 30).unsqueeze(0);
        Assert.True((a.Run(tokens) - b.Run(tokens)).abs().max().item<float>() > 1e-3f);
        // Scalings SharpLens does not compute are refused by name (yarn, linear, dynamic and longrope now are computed: ModelZoo2GoldenTests).
        unscaled["rope_scaling"] = new System.Text.Json.Nodes.JsonObject { ["rope_type"] = "ntk-by-magic", ["factor"] = 4.0 };
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(unscaled.ToJsonString()));
        Assert.Contains("ntk-by-magic", e.Message);
    }

    [Fact]
    public void An_unknown_model_type_lists_the_supported_ones()
    {
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.Load(Zoo("bert-tiny-f32")));
        Assert.Contains("\"bert\"", e.Message);
        foreach (var type in new[] { "gpt2", "llama", "mistral", "qwen2", "gemma", "gemma2", "gpt_neox" }) Assert.Contains(type, e.Message);
    }

    static Dictionary<string, Tensor> Tensors(string fixture)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Zoo(fixture), "model.safetensors"));
        return file.Names.ToDictionary(n => n, file.Read);
    }

    [Fact]
    public void A_missing_tensor_is_named_with_its_file()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = Tensors("qwen2-f32");
        tensors.Remove("model.layers.1.self_attn.k_proj.bias");
        string config = File.ReadAllText(Path.Combine(Zoo("qwen2-f32"), "config.json"));
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.Load(config, HuggingFaceTensorSource.From(tensors, "qwen2 in memory")));
        Assert.Equal("model.layers.1.self_attn.k_proj.bias", e.TensorName);
        Assert.Equal("qwen2 in memory", e.FilePath);
    }

    [Fact]
    public void A_misshapen_tensor_names_both_shapes()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = Tensors("neox-parallel-f32");
        var name = "gpt_neox.layers.0.attention.query_key_value.weight";
        var good = tensors[name];
        tensors[name] = good[..^1];
        string config = File.ReadAllText(Path.Combine(Zoo("neox-parallel-f32"), "config.json"));
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.Load(config, HuggingFaceTensorSource.From(tensors, "neox in memory")));
        Assert.Equal(name, e.TensorName);
        Assert.Contains($"[{good.shape[0] - 1}, {good.shape[1]}]", e.Message);
        Assert.Contains($"[{good.shape[0]}, {good.shape[1]}]", e.Message);
    }

    [Fact]
    public void Loading_from_memory_gives_the_logits_of_loading_the_folder()
    {
        using var scope = torch.NewDisposeScope();
        string config = File.ReadAllText(Path.Combine(Zoo("gemma2-f32"), "config.json"));
        using var fromMemory = HookedTransformer.FromHuggingFace(config, HuggingFaceTensorSource.From(Tensors("gemma2-f32"), "memory"), processing: WeightProcessingOptions.None);
        using var fromFolder = HookedTransformer.FromPretrained(Zoo("gemma2-f32"), processing: WeightProcessingOptions.None);
        var tokens = Tokens(fromFolder.Config.DVocab, pos: 7);
        Assert.Equal(0.0, MaxAbsDiff(fromMemory.Run(tokens), fromFolder.Run(tokens)));
    }
}
