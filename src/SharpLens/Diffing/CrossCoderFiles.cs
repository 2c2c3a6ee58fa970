using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Loading.Pickle;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>
/// Crosscoder files, in the two layouts the field publishes.
/// <para>dictionary_learning (science-of-finetuning fork; <c>PyTorchModelHubMixin.save_pretrained</c>): a folder with
/// <c>config.json</c> (the constructor's arguments: activation_dim, dict_size, num_layers, code_normalization, …; k for
/// BatchTopK) and <c>model.safetensors</c>:</para>
/// <code>
///   encoder.weight [M, d_in, F] f32   encoder.bias [F]        decoder.weight [M, F, d_in]   decoder.bias [M, d_in]
///   code_normalization_id [] i64 (1 CROSSCODER, 2 SAE, 3 MIXED, 4 NONE, 5 DECOUPLED)
///   target_rms [] f32   activation_mean [M, d_in]   activation_std [M, d_in] (NaN: no normaliser)   activation_global_scale [M]
///   k [] i32   threshold [] f32                                                                      (BatchTopK only)
/// </code>
/// A raw state dict (<c>ae.pt</c>, <c>model.safetensors</c> alone) is read too, its shapes inferred from encoder.weight and a
/// torch.compile <c>_orig_mod.</c> prefix dropped, as <c>CrossCoder.from_pretrained</c> does.
/// <para>Kissane's replication: a folder with <c>cfg.json</c> (d_in, dict_size, …) and <c>cc_weights.pt</c>, a torch state
/// dict W_enc [M, d_in, F], W_dec [F, M, d_in], b_enc [F], b_dec [M, d_in] (read with the restricted pickle reader; no code
/// runs). Its L1 penalty is the sum of per-model decoder norms: an L1 crosscoder with CROSSCODER code normalisation.</para>
/// </summary>
public static class CrossCoderFiles
{
    public const string ConfigFile = "config.json", WeightsFile = "model.safetensors";
    public const string KissaneConfigFile = "cfg.json", KissaneWeightsFile = "cc_weights.pt";

    /// <summary>Writes <paramref name="crosscoder"/> as a dictionary_learning folder (config.json + model.safetensors), each file atomically.</summary>
    public static void Save(CrossCoder crosscoder, string folder)
    {
        Directory.CreateDirectory(folder);
        var cfg = crosscoder.Config;
        var json = new JsonObject
        {
            ["activation_dim"] = cfg.ActivationDim,
            ["dict_size"] = cfg.DictSize,
            ["num_layers"] = cfg.NumLayers,
        };
        if (cfg.Architecture == CrossCoderArchitecture.BatchTopK) json["k"] = crosscoder.K;
        json["same_init_for_all_layers"] = true;
        json["norm_init_scale"] = cfg.InitNormOrDefault;
        json["init_with_transpose"] = true;
        json["code_normalization"] = NameOf(cfg.CodeNormalization);
        json["code_normalization_alpha_sae"] = cfg.AlphaSae;
        json["code_normalization_alpha_cc"] = cfg.AlphaCc;
        json["target_rms"] = (double)crosscoder.TargetRms.item<float>();
        string weights = Path.Combine(folder, WeightsFile), weightsTemp = weights + ".tmp";
        using (var scope = torch.NewDisposeScope())
            SafeTensorsWriter.Write(weightsTemp, crosscoder.StateDict().ToList(), new Dictionary<string, string> { ["format"] = "pt" });
        File.Move(weightsTemp, weights, overwrite: true);
        Reports.AtomicFile.WriteAllText(Path.Combine(folder, ConfigFile), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>
    /// Reads a crosscoder: a dictionary_learning folder, a Kissane folder (cfg.json + cc_weights.pt), or a bare
    /// model.safetensors / .pt state dict of either. Shapes are checked against the config; a disagreement names both.
    /// </summary>
    public static CrossCoder Load(string path)
    {
        path = Path.GetFullPath(path);
        if (Directory.Exists(path))
        {
            if (File.Exists(Path.Combine(path, WeightsFile))) return LoadDictionaryLearning(Path.Combine(path, WeightsFile), Path.Combine(path, ConfigFile));
            if (File.Exists(Path.Combine(path, KissaneWeightsFile))) return LoadTorch(Path.Combine(path, KissaneWeightsFile), Path.Combine(path, KissaneConfigFile));
            throw new CrossCoderFileException(path, null, $"the folder holds neither {WeightsFile} (dictionary_learning) nor {KissaneWeightsFile} (Kissane's replication); give a crosscoder folder.");
        }
        if (!File.Exists(path)) throw new CrossCoderFileException(path, null, "no such file or folder.");
        string folder = Path.GetDirectoryName(path)!;
        return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
            ? LoadDictionaryLearning(path, Path.Combine(folder, ConfigFile))
            : LoadTorch(path, Path.Combine(folder, KissaneConfigFile));
    }

    static CrossCoder LoadDictionaryLearning(string weightsPath, string configPath)
    {
        using var file = SafeTensorsFile.Open(weightsPath);
        var names = file.Names.ToDictionary(n => n.StartsWith("_orig_mod.", StringComparison.Ordinal) ? n["_orig_mod.".Length..] : n, n => n, StringComparer.Ordinal);
        return Build(weightsPath, configPath, ReadConfig(configPath), name => names.TryGetValue(name, out var n) ? file.Read(n) : null, kissane: false);
    }

    static CrossCoder LoadTorch(string weightsPath, string configPath)
    {
        using var file = TorchPickleFile.Open(weightsPath);
        var names = file.Names.ToDictionary(n => n.StartsWith("_orig_mod.", StringComparison.Ordinal) ? n["_orig_mod.".Length..] : n, n => n, StringComparer.Ordinal);
        bool kissane = names.ContainsKey("W_enc");
        if (!kissane && !names.ContainsKey("encoder.weight"))
            throw new CrossCoderFileException(weightsPath, null, $"the state dict has neither W_enc (Kissane) nor encoder.weight (dictionary_learning); its tensors are {string.Join(", ", names.Keys.Take(8))}.");
        string config = kissane ? configPath : Path.Combine(Path.GetDirectoryName(weightsPath)!, ConfigFile);
        return Build(weightsPath, config, ReadConfig(config), name => names.TryGetValue(name, out var n) ? file.Read(n) : null, kissane);
    }

    static JsonObject? ReadConfig(string path)
    {
        if (!File.Exists(path)) return null;
        try { return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new CrossCoderFileException(path, null, "must be a JSON object."); }
        catch (JsonException e) { throw new CrossCoderFileException(path, null, $"is not valid JSON ({e.Message})."); }
    }

    static CrossCoder Build(string weightsPath, string configPath, JsonObject? config, Func<string, Tensor?> read, bool kissane)
    {
        using var scope = torch.NewDisposeScope();
        Tensor Need(string name) => read(name) ?? throw new CrossCoderFileException(weightsPath, name, "missing: every crosscoder has this tensor.");
        var encoder = Need(kissane ? "W_enc" : "encoder.weight"); // [M, d_in, F]
        if (encoder.dim() != 3)
            throw new CrossCoderFileException(weightsPath, kissane ? "W_enc" : "encoder.weight", $"has shape {ShapeText.Of(encoder.shape)}; a crosscoder encoder is [n_models, d_in, dict_size].");
        int m = (int)encoder.shape[0], d = (int)encoder.shape[1], f = (int)encoder.shape[2];
        // The config, when there is one, must describe the same crosscoder as the tensors.
        if (config is not null)
        {
            foreach (var (key, actual) in kissane
                ? new[] { ("d_in", d), ("dict_size", f) }
                : new[] { ("activation_dim", d), ("dict_size", f), ("num_layers", m) })
                if (config[key] is JsonValue v && v.TryGetValue<int>(out int stated) && stated != actual)
                    throw new CrossCoderFileException(configPath, key,
                        $"says {stated} but {Path.GetFileName(weightsPath)} has {(kissane ? "W_enc" : "encoder.weight")} [{m}, {d}, {f}] ([n_models, d_in, dict_size]), so {key} = {actual}; the config and the weights belong to different crosscoders.");
        }

        var codeNormalization = CodeNormalization.Crosscoder;
        if (!kissane && read("code_normalization_id") is { } id)
        {
            long value = id.to(ScalarType.Int64).item<long>();
            if (!Enum.IsDefined(typeof(CodeNormalization), (int)value))
                throw new CrossCoderFileException(weightsPath, "code_normalization_id", $"is {value}; known ids are 1 CROSSCODER, 2 SAE, 3 MIXED, 4 NONE, 5 DECOUPLED.");
            codeNormalization = (CodeNormalization)(int)value;
            if (config?["code_normalization"] is JsonValue named && named.TryGetValue<string>(out var stated) && !string.Equals(stated, NameOf(codeNormalization), StringComparison.OrdinalIgnoreCase))
                throw new CrossCoderFileException(configPath, "code_normalization", $"says {stated} but {Path.GetFileName(weightsPath)} stores code_normalization_id {value} ({NameOf(codeNormalization)}).");
        }
        if (codeNormalization == CodeNormalization.Decoupled)
            throw new CrossCoderFileException(weightsPath, "code_normalization_id", "is 5 (DECOUPLED, per-model codes), which SharpLens does not support.");
        var kTensor = kissane ? null : read("k");
        var thresholdTensor = kissane ? null : read("threshold");
        if ((kTensor is null) != (thresholdTensor is null))
            throw new CrossCoderFileException(weightsPath, kTensor is null ? "k" : "threshold", "missing: a BatchTopK crosscoder stores both k and threshold.");
        if (kTensor is null && config?["k"] is JsonValue)
            throw new CrossCoderFileException(configPath, "k", $"is set (a BatchTopK crosscoder) but {Path.GetFileName(weightsPath)} has no k and threshold buffers.");
        if (thresholdTensor is not null && thresholdTensor.numel() != 1)
            throw new CrossCoderFileException(weightsPath, "threshold", $"has shape {ShapeText.Of(thresholdTensor.shape)}; one threshold (a scalar) is supported (per-model thresholds are DECOUPLED).");
        double Number(string key, double fallback) => config?[key] is JsonValue v && v.TryGetValue<double>(out double x) ? x : fallback;
        var cc = new CrossCoder(new CrossCoderConfig(d, f, m)
        {
            Architecture = kTensor is null ? CrossCoderArchitecture.L1 : CrossCoderArchitecture.BatchTopK,
            CodeNormalization = codeNormalization,
            K = kTensor is null ? 1 : (int)kTensor.to(ScalarType.Int64).item<long>(),
            AlphaSae = Number("code_normalization_alpha_sae", 1.0),
            AlphaCc = Number("code_normalization_alpha_cc", 0.1),
            InitNorm = config?["norm_init_scale"] is JsonValue s && s.TryGetValue<double>(out double scale) ? scale : null,
        });
        try
        {
            void Copy(Tensor destination, Tensor source, string name)
            {
                if (!source.shape.SequenceEqual(destination.shape))
                    throw new CrossCoderFileException(weightsPath, name, $"has shape {ShapeText.Of(source.shape)} but {(kissane ? "W_enc" : "encoder.weight")} [{m}, {d}, {f}] implies {ShapeText.Of(destination.shape)}.");
                using var _ = torch.no_grad();
                destination.copy_(source);
            }
            Copy(cc.W_enc, encoder, kissane ? "W_enc" : "encoder.weight");
            if (kissane)
            {
                var decoder = Need("W_dec"); // [F, M, d_in]
                if (!decoder.shape.SequenceEqual(new long[] { f, m, d }))
                    throw new CrossCoderFileException(weightsPath, "W_dec", $"has shape {ShapeText.Of(decoder.shape)} but W_enc [{m}, {d}, {f}] implies [{f}, {m}, {d}] ([dict_size, n_models, d_in]).");
                Copy(cc.W_dec, decoder.permute(1, 0, 2), "W_dec"); // [M, F, d_in]
                Copy(cc.b_enc, Need("b_enc"), "b_enc");
                Copy(cc.b_dec, Need("b_dec"), "b_dec");
            }
            else
            {
                Copy(cc.W_dec, Need("decoder.weight"), "decoder.weight");
                Copy(cc.b_enc, Need("encoder.bias"), "encoder.bias");
                Copy(cc.b_dec, Need("decoder.bias"), "decoder.bias");
                var mean = read("activation_mean") ?? torch.full(m, d, float.NaN);
                var std = read("activation_std") ?? torch.full(m, d, float.NaN);
                var targetRms = read("target_rms") ?? torch.tensor(1.0f);
                var globalScale = read("activation_global_scale") ?? torch.ones(m);
                foreach (var (t, name, shape) in new[] { (mean, "activation_mean", new long[] { m, d }), (std, "activation_std", new long[] { m, d }), (globalScale, "activation_global_scale", new long[] { m }) })
                    if (!t.shape.SequenceEqual(shape))
                        throw new CrossCoderFileException(weightsPath, name, $"has shape {ShapeText.Of(t.shape)} but encoder.weight [{m}, {d}, {f}] implies {ShapeText.Of(shape)}.");
                if (targetRms.numel() != 1) throw new CrossCoderFileException(weightsPath, "target_rms", "must be a scalar.");
                cc.LoadNormalizer(targetRms.reshape([]), mean, std, globalScale);
                if (thresholdTensor is not null)
                    using (torch.no_grad()) cc.Threshold.copy_(thresholdTensor.reshape([]));
            }
            return cc;
        }
        catch
        {
            cc.Dispose();
            throw;
        }
    }

    /// <summary>dictionary_learning's name of a code normalisation (config.json's code_normalization).</summary>
    public static string NameOf(CodeNormalization normalization) => normalization.ToString().ToUpperInvariant();
}
