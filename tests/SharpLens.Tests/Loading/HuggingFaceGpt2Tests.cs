using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using Xunit.Abstractions;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;
using static SharpLens.Tests.Loading.LoadingTestKit;

namespace SharpLens.Tests.Loading;

public class HuggingFaceGpt2Tests(ITestOutputHelper output)
{
    /// <summary>Rewrites a folder's model.safetensors through <paramref name="edit"/> (name → tensor, in file order).</summary>
    static void EditWeights(string folder, Action<List<KeyValuePair<string, Tensor>>> edit)
    {
        string path = Path.Combine(folder, "model.safetensors");
        using var scope = torch.NewDisposeScope();
        List<KeyValuePair<string, Tensor>> tensors;
        using (var file = SafeTensorsFile.Open(path)) tensors = [.. file.Names.Select(n => new KeyValuePair<string, Tensor>(n, file.Read(n)))];
        edit(tensors);
        SafeTensorsWriter.Write(path, tensors);
    }

    static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(json);
        File.WriteAllText(path, json.ToJsonString());
    }

    [Theory]
    [InlineData(true, Activation.GeluNew)]
    [InlineData(false, Activation.Relu)]
    public void Saved_model_loads_back_with_identical_weights_and_logits(bool tied, Activation act)
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = RandomModel(Gpt2Shaped(tied, act));
        model.SaveHuggingFace(dir.Path);
        using var loaded = HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None);

        var tokens = Tokens(model.Config.DVocab);
        Assert.Equal(0.0, MaxAbsDiff(model.Run(tokens), loaded.Run(tokens)));
        var saved = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in loaded.named_parameters())
            Assert.True(p.equal(saved[name]).all().item<bool>(), $"parameter '{name}' changed in the round trip");

        Assert.Equal(["config.json", "model.safetensors"], dir.Files());
        using var file = SafeTensorsFile.Open(dir.File("model.safetensors"));
        Assert.Equal(!tied, file.Contains("lm_head.weight"));
        Assert.True(file.Contains("transformer.h.1.attn.c_attn.weight"));
        Assert.Equal([24L, 72L], file.Info("transformer.h.1.attn.c_attn.weight").Shape);
        var config = JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!;
        Assert.Equal(tied, config["tie_word_embeddings"]!.GetValue<bool>());
        Assert.Equal(act == Activation.Relu ? "relu" : "gelu_new", config["activation_function"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("gpt2-tiny-tied", "single")]
    [InlineData("gpt2-tiny-tied", "batch")]
    [InlineData("gpt2-tiny-untied-f16", "single")]
    [InlineData("gpt2-tiny-untied-f16", "batch")]
    public void Logits_match_an_independent_pytorch_gpt2_within_1e_4(string fixture, string input)
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Fixture(fixture), processing: WeightProcessingOptions.None);
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture(fixture), "golden.json")));
        var entry = golden.RootElement.GetProperty(input);
        var tokenRows = entry.GetProperty("tokens").EnumerateArray().Select(r => r.EnumerateArray().Select(t => t.GetInt64()).ToArray()).ToArray();
        var tokens = torch.tensor(tokenRows.SelectMany(r => r).ToArray()).reshape(tokenRows.Length, tokenRows[0].Length);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var expected = torch.tensor(entry.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray()).reshape(shape);

        var logits = model.Run(tokens);
        Assert.Equal(shape, logits.shape);
        Assert.True(expected.std().item<double>() > 0.5, "golden logits should not be trivially small");
        double diff = MaxAbsDiff(logits, expected);
        output.WriteLine($"{fixture}/{input}: max |diff| = {diff:E2}");
        Assert.True(diff <= 1e-4, $"{fixture}/{input}: max |SharpLens − PyTorch reference| = {diff:E2}, above 1e-4");
    }

    [Theory]
    [InlineData("gpt2-tiny-tied")]
    [InlineData("gpt2-tiny-untied-f16")]
    public void Processed_weights_by_default_give_the_reference_log_probs_within_1e_4(string fixture)
    {
        using var scope = torch.NewDisposeScope();
        using var processed = HookedTransformer.FromPretrained(Fixture(fixture));
        Assert.True(processed.Config.WeightsProcessed);
        Assert.Equal(Normalization.LNPre, processed.Config.NormalizationType);
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture(fixture), "golden.json")));
        var entry = golden.RootElement.GetProperty("batch");
        var tokenRows = entry.GetProperty("tokens").EnumerateArray().Select(r => r.EnumerateArray().Select(t => t.GetInt64()).ToArray()).ToArray();
        var tokens = torch.tensor(tokenRows.SelectMany(r => r).ToArray()).reshape(tokenRows.Length, tokenRows[0].Length);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var expected = torch.tensor(entry.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray()).reshape(shape);

        var logProbs = processed.Run(tokens).to(torch.ScalarType.Float64).log_softmax(-1);
        double diff = MaxAbsDiff(logProbs, expected.log_softmax(-1));
        output.WriteLine($"{fixture}: processed vs reference log-probs, max |diff| = {diff:E2}");
        Assert.True(diff <= 1e-4, $"{fixture}: processed log-probs differ from the reference by {diff:E2}");
        // Centring the unembedding shifts raw logits, so they must differ while log-probs agree.
        Assert.True(MaxAbsDiff(processed.Run(tokens), expected) > 1e-3);
    }

    [Fact]
    public void Config_json_reads_as_the_model_config_it_describes()
    {
        var tied = HuggingFaceGpt2.ReadConfig(Path.Combine(Fixture("gpt2-tiny-tied"), "config.json"));
        Assert.Equal((32, 2, 4, 8, 128, 101, 32), (tied.DModel, tied.NLayers, tied.NHeads, tied.DHead, tied.DMlp, tied.DVocab, tied.NCtx));
        Assert.Equal((Activation.GeluNew, 1e-5, true, (int?)0), (tied.ActFn, tied.Eps, tied.TiedEmbeddings, tied.BosTokenId));
        Assert.Equal("gpt2-tiny-tied", tied.ModelName);

        var untied = HuggingFaceGpt2.ReadConfig(Path.Combine(Fixture("gpt2-tiny-untied-f16"), "config.json"));
        Assert.Equal((48, 3, 3, 16, 96, 24), (untied.DModel, untied.NLayers, untied.NHeads, untied.DHead, untied.DMlp, untied.NCtx));
        Assert.Equal((Activation.Gelu, 1e-6, false), (untied.ActFn, untied.Eps, untied.TiedEmbeddings));
    }

    [Fact]
    public void A_sharded_checkpoint_loads_the_same_model_as_a_single_file()
    {
        using var single = new TempFolder();
        using var sharded = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = RandomModel(Gpt2Shaped(tied: false));
        model.SaveHuggingFace(single.Path);

        var weightMap = new JsonObject();
        using (var file = SafeTensorsFile.Open(single.File("model.safetensors")))
        {
            var names = file.Names.ToList();
            var shards = new[] { names.Take(names.Count / 2).ToList(), names.Skip(names.Count / 2).ToList() };
            for (int s = 0; s < 2; s++)
            {
                string shardName = $"model-{s + 1:D5}-of-00002.safetensors";
                SafeTensorsWriter.Write(sharded.File(shardName), shards[s].Select(n => new KeyValuePair<string, Tensor>(n, file.Read(n))));
                foreach (var n in shards[s]) weightMap[n] = shardName;
            }
        }
        File.WriteAllText(sharded.File("model.safetensors.index.json"), new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap }.ToJsonString());
        File.Copy(single.File("config.json"), sharded.File("config.json"));

        using var fromShards = HookedTransformer.FromPretrained(sharded.Path, processing: WeightProcessingOptions.None);
        var tokens = Tokens(model.Config.DVocab);
        Assert.Equal(0.0, MaxAbsDiff(model.Run(tokens), fromShards.Run(tokens)));
    }

    [Fact]
    public void A_shard_missing_from_the_folder_is_named_with_the_index_and_a_tensor()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        RandomModel(Gpt2Shaped(tied: true)).SaveHuggingFace(dir.Path);
        File.WriteAllText(dir.File("model.safetensors.index.json"),
            """{"weight_map": {"transformer.wte.weight": "model-00001-of-00002.safetensors"}}""");
        var e = Assert.Throws<SafeTensorsFormatException>(() => HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None));
        Assert.Equal(dir.File("model.safetensors.index.json"), e.FilePath);
        Assert.Equal("transformer.wte.weight", e.TensorName);
        Assert.Contains("model-00001-of-00002.safetensors", e.Message);
    }

    [Fact]
    public void Bfloat16_weights_load_exactly_and_a_bfloat16_model_runs()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var model = RandomModel(Gpt2Shaped(tied: false), options: new ModelOptions(DType: ScalarType.BFloat16));
        model.SaveHuggingFace(dir.Path);
        using (var file = SafeTensorsFile.Open(dir.File("model.safetensors")))
            Assert.All(file.Names, n => Assert.Equal(ScalarType.BFloat16, file.Info(n).DType));
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(dir.File("config.json")))!["torch_dtype"]!.GetValue<string>());

        using var asFloat = HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None);
        Assert.Equal(ScalarType.Float32, asFloat.embed.W_E.dtype);
        Assert.Equal(0.0, MaxAbsDiff(asFloat.blocks[1].attn.W_K, model.blocks[1].attn.W_K));
        Assert.Equal(0.0, MaxAbsDiff(asFloat.unembed.W_U, model.unembed.W_U));

        using var asBf16 = HookedTransformer.FromPretrained(dir.Path, new ModelOptions(DType: ScalarType.BFloat16), processing: WeightProcessingOptions.None);
        var tokens = Tokens(model.Config.DVocab);
        var logits = asBf16.Run(tokens);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        Assert.Equal(0.0, MaxAbsDiff(logits, model.Run(tokens)));
    }

    /// <summary>Rounding only: within a few units in the last place (2^-7 for bfloat16, 2^-10 for float16) of the largest logit.</summary>
    [Theory]
    [InlineData(ScalarType.BFloat16, 7)]
    [InlineData(ScalarType.Float16, 10)]
    public void Half_precision_models_stay_close_to_the_float32_reference(ScalarType dtype, int mantissaBits)
    {
        using var scope = torch.NewDisposeScope();
        using var full = HookedTransformer.FromPretrained(Fixture("gpt2-tiny-tied"), processing: WeightProcessingOptions.None);
        using var half = HookedTransformer.FromPretrained(Fixture("gpt2-tiny-tied"), new ModelOptions(DType: dtype), processing: WeightProcessingOptions.None);
        Assert.Equal(dtype, half.blocks[0].mlp!.W_in.dtype);
        var tokens = Tokens(full.Config.DVocab, pos: 12);
        var reference = full.Run(tokens);
        double tolerance = 4 * Math.Pow(2, -mantissaBits) * reference.abs().max().item<float>();
        double diff = MaxAbsDiff(reference, half.Run(tokens));
        output.WriteLine($"{dtype}: max |diff| to float32 = {diff:E2} (tolerance {tolerance:E2})");
        Assert.True(diff > 0 && diff < tolerance, $"{dtype}: max |logit difference| to float32 = {diff:E2}, expected in (0, {tolerance})");
    }

    [Fact]
    public void A_missing_weight_is_named_with_its_file()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        RandomModel(Gpt2Shaped(tied: true)).SaveHuggingFace(dir.Path);
        EditWeights(dir.Path, ts => ts.RemoveAll(t => t.Key == "transformer.h.1.mlp.c_fc.bias"));

        var e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None));
        Assert.Equal("transformer.h.1.mlp.c_fc.bias", e.TensorName);
        Assert.Equal(dir.File("model.safetensors"), e.FilePath);
        Assert.Contains("lacks this weight", e.Message);
    }

    [Fact]
    public void An_untied_config_without_lm_head_names_lm_head()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        RandomModel(Gpt2Shaped(tied: true)).SaveHuggingFace(dir.Path);
        EditConfig(dir.Path, c => c["tie_word_embeddings"] = false);
        var e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None));
        Assert.Equal("lm_head.weight", e.TensorName);
    }

    [Fact]
    public void A_weight_whose_shape_disagrees_with_config_json_is_named()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        RandomModel(Gpt2Shaped(tied: true)).SaveHuggingFace(dir.Path);
        EditConfig(dir.Path, c => c["n_inner"] = 48);
        var e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None));
        Assert.Equal("transformer.h.0.mlp.c_fc.weight", e.TensorName);
        Assert.Contains("shape [24, 40] does not match config.json, which implies [24, 48]", e.Message);
    }

    [Fact]
    public void A_weight_gpt2_does_not_have_is_named()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        RandomModel(Gpt2Shaped(tied: true)).SaveHuggingFace(dir.Path);
        EditWeights(dir.Path, ts => ts.Add(new("transformer.h.2.ln_1.weight", torch.ones(24))));
        var e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None));
        Assert.Equal("transformer.h.2.ln_1.weight", e.TensorName);
    }

    [Fact]
    public void Models_gpt2_cannot_express_are_refused_before_anything_is_written()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var attnOnly = new HookedTransformer(Gpt2Shaped(tied: false) with { AttnOnly = true, NormalizationType = Normalization.LNPre });
        var e = Assert.Throws<SharpLensArgumentException>(() => attnOnly.SaveHuggingFace(dir.Path));
        Assert.Contains("attention-only", e.Message);
        Assert.Contains("LNPre", e.Message);

        using var withBias = RandomModel(Gpt2Shaped(tied: false));
        using (torch.no_grad()) withBias.unembed.b_U.fill_(0.5f);
        Assert.Contains("b_U", Assert.Throws<SharpLensArgumentException>(() => withBias.SaveHuggingFace(dir.Path)).Message);
        Assert.Empty(dir.Files());
    }

    [Fact]
    public void From_state_dict_rebuilds_the_model_and_names_missing_or_misshapen_tensors()
    {
        using var scope = torch.NewDisposeScope();
        using var model = RandomModel(Gpt2Shaped(tied: false));
        var stateDict = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using var rebuilt = HookedTransformer.FromStateDict(model.Config, stateDict);
        var tokens = Tokens(model.Config.DVocab);
        Assert.Equal(0.0, MaxAbsDiff(model.Run(tokens), rebuilt.Run(tokens)));

        var missing = new Dictionary<string, Tensor>(stateDict);
        missing.Remove("blocks.1.attn.b_V");
        Assert.Equal("blocks.1.attn.b_V", Assert.Throws<StateDictException>(() => HookedTransformer.FromStateDict(model.Config, missing)).TensorName);

        var misshapen = new Dictionary<string, Tensor>(stateDict) { ["blocks.0.mlp.W_in"] = torch.zeros(40, 24) };
        var e = Assert.Throws<StateDictException>(() => HookedTransformer.FromStateDict(model.Config, misshapen));
        Assert.Equal("blocks.0.mlp.W_in", e.TensorName);
        Assert.Contains("[40, 24] but the model expects [24, 40]", e.Message);
    }
}
