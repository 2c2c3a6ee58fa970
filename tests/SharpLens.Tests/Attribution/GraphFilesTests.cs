using System.Text.Json;
using SharpLens.Attribution;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Attribution;

/// <summary>Transcoder folders in circuit-tracer's layouts, graph.json / graph.npz, pruning, and refusals of bad input.</summary>
public class GraphFilesTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static string TempDir() { var d = Path.Combine(Path.GetTempPath(), "sharplens-graph-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(d); return d; }

    [Theory]
    [InlineData(false, TranscoderActivation.JumpRelu, true)]
    [InlineData(false, TranscoderActivation.TopK, false)]
    [InlineData(true, TranscoderActivation.Relu, false)]
    public void A_saved_set_loads_back_identical_in_the_native_layout(bool crossLayer, TranscoderActivation act, bool skip)
    {
        using var scope = torch.NewDisposeScope();
        string dir = TempDir();
        try
        {
            using var set = RandomTranscoders.Make(3, 8, 6, crossLayer, act, skip, input: "ln2.hook_normalized");
            TranscoderFiles.Save(set, dir);
            Assert.True(File.Exists(Path.Combine(dir, crossLayer ? "W_dec_2.safetensors" : "layer_2.safetensors")));
            using var back = TranscoderFiles.Load(dir);
            Assert.Equal(crossLayer, back.CrossLayer);
            Assert.Equal(act, back.Activation);
            Assert.Equal(set.K, back.K);
            Assert.Equal("ln2.hook_normalized", back.FeatureInputHook);
            Assert.True(Same(set.W_enc, back.W_enc) && Same(set.b_enc, back.b_enc) && Same(set.b_dec, back.b_dec));
            for (int l = 0; l < 3; l++) Assert.True(Same(set.W_dec[l], back.W_dec[l]));
            Assert.Equal(skip, back.HasSkip);
            if (skip) Assert.True(Same(set.Skip!, back.Skip!));
            if (act == TranscoderActivation.JumpRelu) Assert.True(Same(set.Threshold!, back.Threshold!));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Gemma_scope_params_npz_listed_in_config_yaml_load_transposed_with_paths_relative_to_the_config()
    {
        using var scope = torch.NewDisposeScope();
        string dir = TempDir();
        try
        {
            var g = new Generator(5);
            var wEnc = torch.randn(8, 6, generator: g); // [d_model, d_tc] as Gemma Scope stores it
            for (int l = 0; l < 2; l++)
            {
                Directory.CreateDirectory(Path.Combine(dir, $"layer_{l}"));
                NumpyFiles.SaveNpz(Path.Combine(dir, $"layer_{l}", "params.npz"),
                [new("W_enc", wEnc), new("W_dec", torch.randn(6, 8, generator: g)), new("b_enc", torch.zeros(6)), new("b_dec", torch.zeros(8)), new("threshold", torch.full(6, 0.1f))]);
            }
            File.WriteAllText(Path.Combine(dir, "config.yaml"),
                "model_kind: transcoder_set  # Gemma Scope\nfeature_input_hook: \"ln2.hook_normalized\"\nfeature_output_hook: hook_mlp_out\ntranscoders:\n  - layer_0/params.npz\n  - 'layer_1/params.npz'\n");
            using var set = TranscoderFiles.Load(dir);
            Assert.Equal(2, set.NLayers);
            Assert.Equal(TranscoderActivation.JumpRelu, set.Activation);
            Assert.True(Same(set.W_enc[1], wEnc.t()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Error_node_ids_never_collide_with_feature_ids_as_in_circuit_tracer_0_5_1()
    {
        // circuit-tracer's issue #78: an error node at layer l, position p was "0_{l}_{p}", the id of feature l of
        // layer 0 at p. Every node kept (thresholds 1), a 3-layer CLT: layer-0 features 0–2 meet errors 0–2.
        using var scope = torch.NewDisposeScope();
        var (model, set) = AttributionExactnessTests.Build("clt-relu");
        using var _m = model;
        using var _s = set;
        string dir = TempDir();
        try
        {
            GraphFiles.AttributeAndWrite(new ReplacementModel(model, set), torch.tensor(new long[] { 4, 9, 13, 2, 7, 11 }), dir,
                new AttributionOptions { BatchSize = 16 }, new GraphFileOptions { NodeThreshold = 1.0, EdgeThreshold = 1.0 });
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "graph.json")));
            var nodes = doc.RootElement.GetProperty("nodes").EnumerateArray().ToList();
            string Type(JsonElement x) => x.GetProperty("feature_type").GetString()!;
            var errors = nodes.Where(x => Type(x) == "mlp reconstruction error").ToList();
            Assert.NotEmpty(errors);
            foreach (var e in errors)
            {
                string layer = e.GetProperty("layer").GetString()!;
                int pos = e.GetProperty("ctx_idx").GetInt32();
                Assert.Equal($"{layer}_-1_{pos}", e.GetProperty("node_id").GetString());
                Assert.Equal($"{layer}_-1-{pos}", e.GetProperty("jsNodeId").GetString());
            }
            // The graph holds the old collision's case: feature l of layer 0 at p beside the error of layer l at p.
            var features = nodes.Where(x => Type(x) == "cross layer transcoder").Select(x => x.GetProperty("node_id").GetString()!).ToHashSet();
            Assert.Contains(errors, e => features.Contains($"0_{e.GetProperty("layer").GetString()}_{e.GetProperty("ctx_idx").GetInt32()}"));
            Assert.Equal(nodes.Count, nodes.Select(x => x.GetProperty("node_id").GetString()).Distinct().Count());
            // jsNodeId: a feature's is shared by its positions ("{layer}_{feature}-0"), an error's is its own.
            var featureJs = nodes.Where(x => Type(x) == "cross layer transcoder").Select(x => x.GetProperty("jsNodeId").GetString()).ToHashSet();
            Assert.DoesNotContain(errors, e => featureJs.Contains(e.GetProperty("jsNodeId").GetString()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Graph_files_follow_circuit_tracers_node_order_ids_and_fields()
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = AttributionExactnessTests.Build("clt-relu");
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        string dir = TempDir();
        try
        {
            var summary = GraphFiles.AttributeAndWrite(rm, torch.tensor(new long[] { 4, 9, 13, 2 }), dir,
                new AttributionOptions { BatchSize = 16, MaxFeatureNodes = 20 }, new GraphFileOptions { NodeThreshold = 0.8, EdgeThreshold = 0.98 });
            Assert.Equal(20, summary.Features);
            var npz = NumpyFiles.LoadNpz(Path.Combine(dir, "graph.npz"));
            int nPos = (int)npz["input_tokens"].shape[0];
            Assert.Equal(4, nPos); // no tokenizer: the ids as given, and position 0 is treated as BOS
            long n = npz["adjacency_matrix"].shape[0];
            int nLogits = (int)npz["logit_targets"].shape[0];
            Assert.Equal(20 + (3 + 1) * nPos + nLogits, n);
            Assert.Equal(ScalarType.Float32, npz["adjacency_matrix"].dtype);
            Assert.Equal(ScalarType.Int64, npz["active_features"].dtype);
            Assert.Equal(3, npz["active_features"].shape[1]);
            // Error and token rows are zero; a feature at position 0 never exists (BOS is zeroed).
            Assert.Equal(0, npz["adjacency_matrix"][20..(int)(n - nLogits)].abs().sum().item<float>());
            Assert.Equal(0, npz["active_features"][.., 1].eq(0).sum().item<long>());
            double rep = npz["replacement_score"].item<double>(), comp = npz["completeness_score"].item<double>();
            Assert.InRange(rep, 0, 1); Assert.InRange(comp, 0, 1);

            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "graph.json")));
            var root = doc.RootElement;
            foreach (var key in new[] { "metadata", "qParams", "nodes", "links" }) Assert.True(root.TryGetProperty(key, out _), key);
            var meta = root.GetProperty("metadata");
            Assert.Equal("graph", meta.GetProperty("slug").GetString());
            Assert.Equal(nPos, meta.GetProperty("prompt_tokens").GetArrayLength());
            var nodes = root.GetProperty("nodes").EnumerateArray().ToList();
            var ids = nodes.Select(x => x.GetProperty("node_id").GetString()!).ToHashSet();
            Assert.Equal(nodes.Count, ids.Count); // every id names one node
            Assert.Equal(nPos, nodes.Count(x => x.GetProperty("feature_type").GetString() == "embedding"));
            Assert.Equal(nLogits, nodes.Count(x => x.GetProperty("feature_type").GetString() == "logit"));
            var top = nodes.Single(x => x.GetProperty("is_target_logit").GetBoolean());
            Assert.Equal($"4_{npz["logit_targets"][0].item<long>()}_{nPos - 1}", top.GetProperty("node_id").GetString());
            foreach (var f in nodes.Where(x => x.GetProperty("feature_type").GetString() == "cross layer transcoder"))
            {
                var parts = f.GetProperty("node_id").GetString()!.Split('_').Select(long.Parse).ToArray();
                Assert.Equal(GraphJson.Cantor(parts[0], parts[1]), f.GetProperty("feature").GetInt64());
                Assert.Equal($"{parts[0]}_{parts[1]}-0", f.GetProperty("jsNodeId").GetString());
            }
            foreach (var link in root.GetProperty("links").EnumerateArray())
            {
                Assert.Contains(link.GetProperty("source").GetString()!, ids);
                Assert.Contains(link.GetProperty("target").GetString()!, ids);
            }
            Assert.Empty(Directory.GetDirectories(dir)); // no temporary folder left behind
            foreach (var t in npz.Values) t.Dispose();
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Pruning_of_a_known_chain_keeps_the_path_and_scores_match_the_definitions()
    {
        // 1 feature, 1 layer × 2 positions of errors, 2 tokens, 1 logit: token1 → feature → logit, error(0,1) → logit.
        using var scope = torch.NewDisposeScope();
        int n = 1 + 2 + 2 + 1;
        var a = torch.zeros(n, n);
        a[0, 4] = 2.0f;          // token 1 → feature
        a[5, 0] = 3.0f;          // feature → logit
        a[5, 2] = 1.0f;          // error (0, pos 1) → logit
        using var g = new AttributionGraph("ab", torch.tensor(new long[] { 0, 7 }), torch.tensor(new long[,] { { 0, 1, 3 } }), torch.tensor(new[] { 1.5f }),
            torch.tensor(new long[] { 0 }), a, [9], ["x"], torch.tensor(new[] { 1.0f }), 1, "s", ["a", "b"], 10);
        var (rep, comp) = GraphPruning.Scores(g);
        // Influence: logit row normalised = [0.75 feature, 0.25 error]; the feature's row: token1 all. Tokens get 0.75, errors 0.25.
        Assert.Equal(0.75, rep, 5);
        // Completeness: feature 1·0.75, logit (1 − 0.25)·1, errors/tokens 1·influence → (0.75 + 0.75 + 0.25 + 0.75) / (0.75 + 1 + 0.25 + 0.75).
        Assert.Equal((0.75 + 0.75 + 0.25 + 0.75) / (0.75 + 1 + 0.25 + 0.75), comp, 5);
        using var prune = GraphPruning.Prune(g, 0.8, 0.98);
        var mask = prune.NodeMask.data<bool>().ToArray();
        Assert.True(mask[0] && mask[4] && mask[5]);
    }

    [Theory]
    [InlineData(0.0, 0.98, "--node-threshold")]
    [InlineData(1.5, 0.98, "--node-threshold")]
    [InlineData(0.8, -0.1, "--edge-threshold")]
    public void Thresholds_outside_0_1_are_refused_and_nothing_is_written(double node, double edge, string option)
    {
        using var scope = torch.NewDisposeScope();
        var (model, set) = AttributionExactnessTests.Build("plt-relu");
        using var _m = model;
        using var _s = set;
        string dir = TempDir();
        try
        {
            var e = Assert.Throws<AttributionArgumentException>(() => GraphFiles.AttributeAndWrite(new ReplacementModel(model, set), torch.tensor(new long[] { 1, 2 }), dir,
                null, new GraphFileOptions { NodeThreshold = node, EdgeThreshold = edge }));
            Assert.Contains(option, e.Message);
            Assert.Empty(Directory.EnumerateFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Mismatched_or_broken_transcoders_are_refused_naming_the_problem()
    {
        using var scope = torch.NewDisposeScope();
        var model = TestModels.RandomModel(TestModels.Tiny() with { NLayers = 3 });
        using var _m = model;
        using (var twoLayers = RandomTranscoders.Make(2, 32, 6, false))
            Assert.Contains("n_layers = 3", Assert.Throws<TranscoderMismatchException>(() => new ReplacementModel(model, twoLayers)).Message);
        using (var wide = RandomTranscoders.Make(3, 16, 6, false))
            Assert.Contains("d_model = 32", Assert.Throws<TranscoderMismatchException>(() => new ReplacementModel(model, wide)).Message);
        using (var badHook = RandomTranscoders.Make(3, 32, 6, false, input: "hook_resid_middle"))
            Assert.Contains("hook_resid_mid", Assert.Throws<TranscoderMismatchException>(() => new ReplacementModel(model, badHook)).Message);
        Assert.Throws<AttributionArgumentException>(() => new ReplacementModel(model, RandomTranscoders.Make(3, 32, 6, false)).EnsureTokenized(torch.empty(0, dtype: ScalarType.Int64)));

        string dir = TempDir();
        try
        {
            using (var plt = RandomTranscoders.Make(3, 32, 6, false)) TranscoderFiles.Save(plt, Path.Combine(dir, "plt"));
            File.Delete(Path.Combine(dir, "plt", "layer_1.safetensors"));
            Assert.Contains("layer_1.safetensors", Assert.Throws<TranscoderFileException>(() => TranscoderFiles.Load(Path.Combine(dir, "plt"))).Message);

            using (var clt = RandomTranscoders.Make(3, 32, 6, true)) TranscoderFiles.Save(clt, Path.Combine(dir, "clt"));
            SharpLens.Loading.SafeTensorsWriter.Write(Path.Combine(dir, "clt", "W_dec_1.safetensors"), [new("W_dec_1", torch.zeros(6, 1, 32))]);
            var e = Assert.Throws<TranscoderFileException>(() => TranscoderFiles.Load(Path.Combine(dir, "clt")));
            Assert.Contains("W_dec_1", e.Message);
            Assert.Contains("[d_transcoder = 6, 2, d_model = 32]", e.Message);
            Assert.IsAssignableFrom<SharpLensException>(e);

            Directory.CreateDirectory(Path.Combine(dir, "noconfig"));
            Assert.Contains("config.yaml", Assert.Throws<TranscoderFileException>(() => TranscoderFiles.Load(Path.Combine(dir, "noconfig"))).Message);
        }
        finally { Directory.Delete(dir, true); }
    }
}
