using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Models;
using TorchSharp;
using Xunit.Abstractions;
using static SharpLens.Tests.Loading.LoadingTestKit;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

/// <summary>
/// Model zoo 2 (Qwen 3, Gemma 3, Phi-3, OLMo 2, Mixtral) and Hugging Face's rotary scalings (linear, dynamic, yarn,
/// longrope; transformers v4 and v5 spellings), random weights in the HF layout, against
/// scripts/golden/make_zoo2_golden.py's own float64 forward of transformers' semantics.
/// </summary>
public class ModelZoo2GoldenTests(ITestOutputHelper output)
{
    static readonly string[] Names =
    [
        "qwen3-tied-f32", "qwen3-yarn-bf16", "gemma3-f32", "gemma3-v5-bf16", "phi3-f32", "phi3-longrope-f32", "olmo2-f32",
        "olmo2-tied-bf16", "mixtral-f32", "mixtral-top1-bf16", "llama-linear-f32", "llama-dynamic-f32", "llama-yarn-v5-f32",
        "gemma3mm-f32", "gemma3mm-untied-bf16",
    ];

    public static TheoryData<string, string> Fixtures()
    {
        var data = new TheoryData<string, string>();
        foreach (var name in Names)
            foreach (var input in new[] { "single", "batch" }) data.Add(name, input);
        return data;
    }

    public static TheoryData<string> Folders()
    {
        var data = new TheoryData<string>();
        foreach (var name in Names) data.Add(name);
        return data;
    }

    static string Zoo(string name) => Fixture(Path.Combine("zoo", name));
    static string ConfigText(string name) => File.ReadAllText(Path.Combine(Zoo(name), "config.json"));

    double Compare(HookedTransformer model, string fixture, string input, string label) =>
        ModelZooGoldenTests.Compare(model, fixture, input, label, output);

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
        double diff = Compare(model, fixture, input, "processed");
        Assert.True(diff <= 1e-4, $"{fixture}/{input}: max |SharpLens processed − reference| log-prob = {diff:E2}, above 1e-4");
    }

    [Theory]
    [MemberData(nameof(Folders))]
    public void Generation_with_the_key_value_cache_equals_full_recomputation(string fixture)
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Zoo(fixture), processing: WeightProcessingOptions.None);
        // dynamic and longrope recompute their frequencies from the sequence length, as Hugging Face does, so a cached
        // key keeps the rotation it was given: past their original context the two runs differ in transformers too.
        int length = model.Config.RopeScaling?.RopeType is "dynamic" or "longrope" ? model.Config.RopeScaling.OriginalContext : 12;
        var (tokens, _) = ModelZooGoldenTests.Golden(fixture, "single");
        var prompt = tokens[.., ..4];
        var cached = model.Generate(prompt, length - 4, temperature: 0, useKeyValueCache: true);
        var recomputed = model.Generate(prompt, length - 4, temperature: 0, useKeyValueCache: false);
        Assert.Equal(recomputed.data<long>().ToArray(), cached.data<long>().ToArray());
        // And the logits themselves: a sequence run in pieces through one cache gives the logits of running it whole.
        var whole = model.Run(cached);
        using var cache = model.NewKeyValueCache();
        var first = model.Run(cached[.., ..5], cache);
        var rest = Enumerable.Range(5, (int)cached.shape[1] - 5).Select(p => model.Run(cached[.., p..(p + 1)], cache)).ToList();
        var pieces = torch.cat([first, .. rest], 1);
        double diff = MaxAbsDiff(pieces, whole);
        output.WriteLine($"{fixture}: cached pieces vs whole, max |logit diff| = {diff:E2} over {cached.shape[1]} positions");
        Assert.True(diff < 1e-4, $"{fixture}: cached logits differ from the full forward by {diff:E2}");
    }

    [Fact]
    public void Configs_read_as_their_families_define_them()
    {
        var qwen3 = HuggingFaceModels.ReadConfig(ConfigText("qwen3-tied-f32"));
        Assert.Equal(16, qwen3.DHead); // head_dim independent of hidden_size / num_attention_heads = 8
        Assert.True(qwen3.UseQkNorm && qwen3.QkNormPerHead && qwen3.TiedEmbeddings);

        var gemma3 = HuggingFaceModels.ReadConfig(ConfigText("gemma3-f32"));
        Assert.Equal(["local", "local", "global"], gemma3.AttnTypes!);
        Assert.Equal(10000, gemma3.RotaryBaseLocal);
        Assert.Equal(1e6, gemma3.RotaryBase);
        Assert.Equal("linear", gemma3.RopeScaling!.RopeType);
        Assert.Equal(Math.Sqrt(24), gemma3.AttentionScale, 12);
        var gemma3v5 = HuggingFaceModels.ReadConfig(ConfigText("gemma3-v5-bf16"));
        Assert.Equal(["local", "global", "local", "global"], gemma3v5.AttnTypes!);
        Assert.Equal((10000.0, 500000.0, 4.0), (gemma3v5.RotaryBaseLocal!.Value, gemma3v5.RotaryBase, gemma3v5.RopeScaling!.Factor));

        var phi3 = HuggingFaceModels.ReadConfig(ConfigText("phi3-longrope-f32"));
        Assert.Equal(8, phi3.RotaryDimensions); // head_dim 16 × partial_rotary_factor 0.5
        Assert.Equal((4.0, 8), (phi3.RopeScaling!.Factor, phi3.RopeScaling.OriginalContext)); // 32 / 8
        Assert.Equal(Math.Sqrt(1 + Math.Log(4) / Math.Log(8)), phi3.RopeScaling.AttentionFactor, 12);

        var olmo2 = HuggingFaceModels.ReadConfig(ConfigText("olmo2-f32"));
        Assert.Equal((Normalization.None, Normalization.RMS, Normalization.RMS), (olmo2.NormalizationType, olmo2.FinalNormalization, olmo2.PostNormalizationType!.Value));
        Assert.False(olmo2.QkNormPerHead);

        var mixtral = HuggingFaceModels.ReadConfig(ConfigText("mixtral-f32"));
        Assert.Equal((4, 2), (mixtral.NumExperts!.Value, mixtral.ExpertsPerToken!.Value));

        var dynamic = HuggingFaceModels.ReadConfig(ConfigText("llama-dynamic-f32"));
        Assert.Equal(("dynamic", 8, 16), (dynamic.RopeScaling!.RopeType, dynamic.RopeScaling.OriginalContext, dynamic.NCtx)); // runs past max_position_embeddings
    }

    [Fact]
    public void A_v5_config_gives_the_logits_of_its_v4_spelling()
    {
        using var scope = torch.NewDisposeScope();
        var v5 = JsonNode.Parse(ConfigText("llama-yarn-v5-f32"))!.AsObject();
        var v4 = JsonNode.Parse(v5.ToJsonString())!.AsObject();
        var parameters = v4["rope_parameters"]!.AsObject();
        v4["rope_theta"] = parameters["rope_theta"]!.GetValue<double>();
        parameters.Remove("rope_theta");
        v4.Remove("rope_parameters");
        v4["rope_scaling"] = parameters.DeepClone();
        v4["torch_dtype"] = v4["dtype"]!.GetValue<string>();
        v4.Remove("dtype");
        var tensors = Tensors("llama-yarn-v5-f32");
        using var a = HookedTransformer.FromHuggingFace(v5.ToJsonString(), HuggingFaceTensorSource.From(tensors, "v5"), processing: WeightProcessingOptions.None);
        using var b = HookedTransformer.FromHuggingFace(v4.ToJsonString(), HuggingFaceTensorSource.From(tensors, "v4"), processing: WeightProcessingOptions.None);
        var tokens = torch.arange(1, 30).unsqueeze(0);
        Assert.Equal(0.0, MaxAbsDiff(a.Run(tokens), b.Run(tokens)));
        // Without the scaling the same weights give other logits: the v5 field is really read.
        v4["rope_scaling"] = null;
        using var c = HookedTransformer.FromHuggingFace(v4.ToJsonString(), HuggingFaceTensorSource.From(tensors, "plain"), processing: WeightProcessingOptions.None);
        Assert.True(MaxAbsDiff(a.Run(tokens), c.Run(tokens)) > 1e-3);
    }

    [Fact]
    public void Which_expert_fired_is_a_cache_lookup_and_the_router_is_hookable()
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Zoo("mixtral-f32"), processing: WeightProcessingOptions.None);
        var (tokens, _) = ModelZooGoldenTests.Golden("mixtral-f32", "single");
        var (logits, cache) = model.RunWithCache(tokens);
        var chosen = cache["blocks.1.mlp.hook_expert_indices"]; // [batch, pos, k]
        var probabilities = cache["blocks.1.mlp.hook_expert_weights"]; // [batch, pos, num_experts]
        var routerLogits = cache["blocks.1.mlp.hook_router_logits"];
        Assert.Equal([1L, 12, 2], chosen.shape);
        Assert.Equal([1L, 12, 4], probabilities.shape);
        Assert.Equal(0.0, MaxAbsDiff(probabilities, routerLogits.softmax(-1)), 6);
        Assert.Equal(chosen.data<long>().ToArray(), probabilities.topk(2).indexes.data<long>().ToArray());
        Assert.True(cache.Keys.Contains("blocks.0.mlp.experts.3.hook_post") || model.HookDict.ContainsKey("blocks.0.mlp.experts.3.hook_post"));
        // Forcing every token to expert 0 alone (router logits hooked) changes the output.
        var forced = model.RunWithHooks(tokens, [("blocks.1.mlp.hook_router_logits", (t, _) => torch.where(torch.arange(4) == 0, 100f, -100f).expand_as(t).to(t.dtype))]);
        Assert.True(MaxAbsDiff(forced, logits) > 1e-3);
    }

    [Fact]
    public void Query_and_key_norms_are_hook_points()
    {
        using var scope = torch.NewDisposeScope();
        using var model = HookedTransformer.FromPretrained(Zoo("qwen3-tied-f32"), processing: WeightProcessingOptions.None);
        foreach (var name in new[] { "blocks.0.attn.q_norm.hook_normalized", "blocks.0.attn.k_norm.hook_scale", "blocks.1.attn.hook_rot_q" })
            Assert.True(model.HookDict.ContainsKey(name), name);
        var (_, cache) = model.RunWithCache(torch.arange(1, 6).unsqueeze(0));
        Assert.Equal([1L, 5, 4, 16], cache["blocks.0.attn.q_norm.hook_normalized"].shape);
        using var olmo = HookedTransformer.FromPretrained(Zoo("olmo2-f32"), processing: WeightProcessingOptions.None);
        Assert.Equal([4L * 8], olmo.blocks[0].attn.q_norm!.w!.shape); // over the whole projection
    }

    [Fact]
    public void Rope_settings_are_refused_by_field_name_when_not_understood()
    {
        var config = JsonNode.Parse(ConfigText("llama-linear-f32"))!.AsObject();
        config["rope_scaling"] = new JsonObject { ["rope_type"] = "ntk-by-magic", ["factor"] = 2.0 };
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(config.ToJsonString(), "my/config.json"));
        Assert.Contains("rope_scaling.rope_type", e.Message);
        Assert.Contains("ntk-by-magic", e.Message);
        Assert.Contains("my/config.json", e.Message);

        config["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0, ["beta_fast"] = 4.0 };
        e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(config.ToJsonString()));
        Assert.Contains("rope_scaling.beta_fast", e.Message);

        config["rope_scaling"] = null;
        config["rope_parameters"] = new JsonObject { ["rope_type"] = "longrope", ["rope_theta"] = 10000.0, ["short_factor"] = new JsonArray(1.0), ["long_factor"] = new JsonArray(1.0), ["factor"] = 2.0 };
        e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(config.ToJsonString()));
        Assert.Contains("rope_parameters.short_factor", e.Message);
    }

    [Fact]
    public void A_config_field_that_would_change_the_maths_is_never_silently_ignored()
    {
        var config = JsonNode.Parse(ConfigText("qwen3-tied-f32"))!.AsObject();
        config["attn_logit_softcapping"] = 30.0; // not a Qwen 3 field: HF's Qwen 3 would ignore it, but a user meant something
        var e = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(config.ToJsonString()));
        Assert.Contains("\"attn_logit_softcapping\"", e.Message);
        // Harmless bookkeeping passes, and so does a semantic-looking field set to null.
        config.Remove("attn_logit_softcapping");
        config["router_aux_loss_coef"] = 0.01;
        config["clip_qkv"] = null;
        HuggingFaceModels.ReadConfig(config.ToJsonString());
        // Every fixture of both zoos reads without a refusal.
        foreach (var dir in Directory.EnumerateDirectories(Fixture("zoo")).Where(d => !d.EndsWith("bert-tiny-f32", StringComparison.Ordinal)))
            HuggingFaceModels.ReadConfig(File.ReadAllText(Path.Combine(dir, "config.json")));
    }

    [Fact]
    public void A_multimodal_gemma3_config_reads_its_text_config_over_the_text_defaults()
    {
        // gemma3mm-f32's text_config leaves out heads' scale, rotary bases, eps, the window pattern and the context, as gemma-3-4b's does.
        var cfg = HuggingFaceModels.ReadConfig(ConfigText("gemma3mm-f32"), Path.Combine(Zoo("gemma3mm-f32"), "config.json"));
        Assert.Equal(["local", "local", "local", "local", "local", "global"], cfg.AttnTypes!);
        Assert.Equal((16.0, 10000.0, 1e6, 131072), (cfg.AttentionScale, cfg.RotaryBaseLocal!.Value, cfg.RotaryBase, cfg.NCtx));
        Assert.Equal(("linear", 8.0), (cfg.RopeScaling!.RopeType, cfg.RopeScaling.Factor));
        Assert.Equal((1e-6, Activation.GeluNew, 3), (cfg.Eps, cfg.ActFn, cfg.WindowSize!.Value));

        var missing = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig("""{"model_type": "gemma3", "vision_config": {}}"""));
        Assert.Contains("text_config", missing.Message);
        var ignored = Assert.Throws<CheckpointException>(() => HuggingFaceModels.ReadConfig(
            ConfigText("gemma3mm-f32").Replace("\"sliding_window\": 3", "\"sliding_window\": 3, \"attn_logit_scale\": 2.0")));
        Assert.Contains("attn_logit_scale", ignored.Message);
        Assert.Contains("text_config", ignored.Message);
    }

    [Fact]
    public void A_multimodal_gemma3_checkpoint_loads_its_text_model_and_names_stray_tensors_as_stored()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = Tensors("gemma3mm-untied-bf16");
        Assert.Contains(tensors.Keys, n => n.StartsWith("vision_tower.", StringComparison.Ordinal));
        string config = ConfigText("gemma3mm-untied-bf16");
        // transformers ≥ 4.52 saves the same model as model.language_model.* and lm_head.weight: both read the same.
        var renamed = tensors.ToDictionary(kv => kv.Key.StartsWith("language_model.model.", StringComparison.Ordinal) ? "model.language_model." + kv.Key["language_model.model.".Length..]
            : kv.Key == "language_model.lm_head.weight" ? "lm_head.weight" : "model." + kv.Key, kv => kv.Value);
        using var hub = HookedTransformer.FromHuggingFace(config, HuggingFaceTensorSource.From(tensors, "hub"), processing: WeightProcessingOptions.None);
        using var saved = HookedTransformer.FromHuggingFace(config, HuggingFaceTensorSource.From(renamed, "saved"), processing: WeightProcessingOptions.None);
        var (tokens, _) = ModelZooGoldenTests.Golden("gemma3mm-untied-bf16", "single");
        Assert.Equal(0, MaxAbsDiff(hub.Run(tokens), saved.Run(tokens)));

        var stray = new Dictionary<string, Tensor>(tensors) { ["language_model.model.layers.0.self_attn.extra.weight"] = torch.zeros(2) };
        var e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromHuggingFace(config, HuggingFaceTensorSource.From(stray, "stray"), processing: WeightProcessingOptions.None));
        Assert.Contains("language_model.model.layers.0.self_attn.extra.weight", e.Message);
        var lacking = new Dictionary<string, Tensor>(tensors);
        lacking.Remove("language_model.lm_head.weight");
        e = Assert.Throws<CheckpointException>(() => HookedTransformer.FromHuggingFace(config, HuggingFaceTensorSource.From(lacking, "lacking"), processing: WeightProcessingOptions.None));
        Assert.Contains("language_model.lm_head.weight", e.Message);
    }

    static Dictionary<string, Tensor> Tensors(string fixture)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(Zoo(fixture), "model.safetensors"));
        return file.Names.ToDictionary(n => n, file.Read);
    }
}
