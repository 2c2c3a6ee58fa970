// SAE files, as SAELens and Gemma Scope publish them:
//
//   SAELens folder   cfg.json                  the config (below)
//                    sae_weights.safetensors   W_enc [d_in, d_sae], W_dec [d_sae, d_out], b_dec [d_out], and by
//                                              architecture b_enc, threshold, b_gate / r_mag / b_mag, W_skip [d_out, d_in]
//                    sparsity.safetensors      optional: "sparsity" [d_sae], log10 of each feature's firing rate
//   cfg.json 6.x     {"architecture": "standard"|"topk"|"jumprelu"|"gated"|"transcoder"|"skip_transcoder",
//                     "d_in", "d_sae", "d_out", "dtype", "apply_b_dec_to_input", "normalize_activations",
//                     "reshape_activations": "none"|"hook_z", "k",
//                     "metadata": {"model_name", "hook_name", "hook_head_index", "context_size", "prepend_bos",
//                                  "dataset_path", "neuronpedia_id", "hook_name_out"}}
//   cfg.json < 6.0   the same keys at the top level, "hook_point" for hook_name, and the activation as
//                    "activation_fn_str": "relu"|"topk" with "activation_fn_kwargs": {"k": ...}
//   Gemma Scope      params.npz with W_enc, W_dec, b_enc, b_dec, threshold: a JumpReLU SAE that does not subtract
//                    b_dec from its input.
// A BatchTopK SAE is saved as SAELens saves it: a JumpReLU SAE whose threshold is the learned batch threshold.

using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Interop;
using SharpLens.IO;
using SharpLens.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>Reads and writes SAELens folders and Gemma Scope params.npz files.</summary>
public static class SaeFiles
{
    public const string ConfigFile = "cfg.json";
    public const string WeightsFile = "sae_weights.safetensors";
    public const string SparsityFile = "sparsity.safetensors";

    /// <summary>Loads an SAELens folder or a Gemma Scope params.npz.</summary>
    public static Sae Load(string path)
    {
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) return LoadGemmaScope(path);
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"No SAE at '{path}': give an SAELens folder (cfg.json + {WeightsFile}) or a Gemma Scope params.npz.");
        string cfgPath = Path.Combine(path, ConfigFile), weightsPath = Path.Combine(path, WeightsFile);
        if (!File.Exists(cfgPath)) throw new SaeFileException(cfgPath, null, $"missing: an SAELens folder holds {ConfigFile} beside {WeightsFile}.");
        var config = ParseConfig(cfgPath, File.ReadAllText(cfgPath));
        if (!File.Exists(weightsPath)) throw new SaeFileException(weightsPath, null, $"missing: an SAELens folder holds {WeightsFile} beside {ConfigFile}.");
        using var file = SafeTensorsFile.Open(weightsPath);
        CheckBeforeAllocating(weightsPath, config, name => file.Contains(name) ? file.Info(name).Shape : null);
        return FromTensors(weightsPath, config, name => file.Contains(name) ? file.Read(name) : null, skipIsTransposed: true);
    }

    /// <summary>The log10 feature densities of an SAELens folder, or null when it has no sparsity file.</summary>
    public static Tensor? LoadSparsity(string folder)
    {
        string path = Path.Combine(folder, SparsityFile);
        if (!File.Exists(path)) return null;
        using var file = SafeTensorsFile.Open(path);
        if (!file.Contains("sparsity")) throw new SaeFileException(path, "sparsity", "the file has no 'sparsity' tensor.");
        return file.Read("sparsity").to(ScalarType.Float32);
    }

    /// <summary>Loads a Gemma Scope params.npz (JumpReLU, no b_dec subtraction on the input).</summary>
    public static Sae LoadGemmaScope(string npzPath, SaeMetadata? metadata = null)
    {
        var arrays = NumpyFiles.LoadNpz(npzPath);
        try
        {
            foreach (var key in new[] { "W_enc", "W_dec", "b_enc", "b_dec", "threshold" })
                if (!arrays.ContainsKey(key)) throw new SaeFileException(npzPath, key, $"missing: Gemma Scope params.npz holds W_enc, W_dec, b_enc, b_dec and threshold; it has {string.Join(", ", arrays.Keys)}.");
            if (arrays["W_enc"].dim() != 2) throw new SaeFileException(npzPath, "W_enc", $"expected [d_in, d_sae], got {ShapeText.Of(arrays["W_enc"].shape)}.");
            var config = new SaeConfig(SaeArchitecture.JumpReLU, (int)arrays["W_enc"].shape[0], (int)arrays["W_enc"].shape[1])
            { ApplyBDecToInput = false, Metadata = metadata ?? new() };
            CheckBeforeAllocating(npzPath, config, name => arrays.TryGetValue(name, out var t) ? t.shape : null);
            return FromTensors(npzPath, config, name => arrays.TryGetValue(name, out var t) ? t : null, skipIsTransposed: false);
        }
        finally { foreach (var t in arrays.Values) t.Dispose(); }
    }

    /// <summary>Writes an SAELens 6.x folder (cfg.json + sae_weights.safetensors [+ sparsity.safetensors]); each file appears whole or not at all.</summary>
    public static void Save(Sae sae, string folder, Tensor? logSparsity = null)
    {
        Directory.CreateDirectory(folder);
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, p) in sae.named_parameters())
            tensors.Add(new(name, name == "W_skip" ? p.detach().t().contiguous() : p.detach().contiguous()));
        SafeTensorsWriter.Write(Path.Combine(folder, WeightsFile), tensors);
        if (logSparsity is not null)
            SafeTensorsWriter.Write(Path.Combine(folder, SparsityFile), [new("sparsity", logSparsity.detach().to(ScalarType.Float32).contiguous())]);
        WriteAtomically(Path.Combine(folder, ConfigFile), ConfigJson(sae.Config));
    }

    /// <summary>Writes a Gemma Scope params.npz (a JumpReLU SAE without b_dec subtraction).</summary>
    public static void SaveGemmaScope(Sae sae, string npzPath)
    {
        if (sae.Config.Architecture != SaeArchitecture.JumpReLU || sae.Config.ApplyBDecToInput)
            throw new ArgumentException($"params.npz holds JumpReLU SAEs that do not subtract b_dec from the input; this one is {sae.Config.Architecture} (apply_b_dec_to_input = {sae.Config.ApplyBDecToInput}). Save it as an SAELens folder instead.", nameof(sae));
        NumpyFiles.SaveNpz(npzPath, sae.named_parameters().Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter.detach())));
    }

    /// <summary>
    /// The SAE's encoder and decoder as stored must have the shapes cfg.json implies before an SAE of that size is
    /// allocated: a cfg.json claiming d_sae = 2³¹ over a small file is refused here, not allocated.
    /// </summary>
    static void CheckBeforeAllocating(string file, SaeConfig config, Func<string, long[]?> shapeOf)
    {
        foreach (var (name, expected) in new (string, long[])[] { ("W_enc", [config.DIn, config.DSae]), ("W_dec", [config.DSae, config.OutputDim]) })
        {
            var stored = shapeOf(name) ?? throw new SaeFileException(file, name, $"missing: a {config.Architecture} SAE stores {name}.");
            if (!stored.SequenceEqual(expected))
                throw new SaeFileException(file, name, $"expected shape {ShapeText.Of(expected)} (d_in = {config.DIn}, d_sae = {config.DSae}, d_out = {config.OutputDim}) but the file has {ShapeText.Of(stored)}.");
        }
        SizeCheck.InMemory(4L * config.DSae * (config.DIn + config.OutputDim + 3), file, "the SAE");
    }

    static Sae FromTensors(string file, SaeConfig config, Func<string, Tensor?> read, bool skipIsTransposed)
    {
        var sae = new Sae(config);
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        foreach (var (name, p) in sae.named_parameters())
        {
            var stored = read(name);
            if (stored is null && name == "threshold" && read("log_threshold") is { } log) stored = log.exp();
            if (stored is null)
                throw new SaeFileException(file, name, $"missing: a {config.Architecture} SAE needs {string.Join(", ", sae.named_parameters().Select(q => q.name))}.");
            if (name == "W_skip" && skipIsTransposed) stored = stored.t(); // SAELens stores W_skip [d_out, d_in]
            if (!stored.shape.SequenceEqual(p.shape))
                throw new SaeFileException(file, name,
                    $"expected shape {ShapeText.Of(p.shape)} (d_in = {config.DIn}, d_sae = {config.DSae}, d_out = {config.OutputDim}) but the file has {ShapeText.Of(stored.shape)}" +
                    (name == "W_skip" && skipIsTransposed ? " (SAELens layout [d_out, d_in], shown transposed)." : "."));
            p.copy_(stored);
        }
        return sae;
    }

    /// <summary>Parses SAELens's cfg.json, 6.x or pre-6.0.</summary>
    public static SaeConfig ParseConfig(string path, string json)
    {
        JsonObject root;
        try { root = JsonNode.Parse(json) as JsonObject ?? throw new SaeFileException(path, null, "the config must be a JSON object of SAELens fields (d_in, d_sae, ...)."); }
        catch (JsonException e) { throw new SaeFileException(path, null, $"not valid JSON: {e.Message}"); }
        var meta = (root["metadata"] ?? root["meta"]) is { } m
            ? m as JsonObject ?? throw new SaeFileException(path, "metadata", "must be a JSON object.")
            : root;

        string? Str(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
        int? Int(JsonObject o, string key) => o[key] is JsonValue v ? (v.TryGetValue<int>(out var i) ? i : v.TryGetValue<double>(out var d) ? (int)d : null) : null;
        bool? Bool(JsonObject o, string key) => o[key] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;
        int Required(string key) => Int(root, key) ?? throw new SaeFileException(path, key, $"missing or not a number; cfg.json must give {key}.");

        string arch = Str(root, "architecture") ?? "standard";
        int k = Int(root, "k") ?? 0;
        if (Str(root, "activation_fn_str") == "topk")
        {
            arch = "topk";
            k = (root["activation_fn_kwargs"] as JsonObject) is { } kw ? Int(kw, "k") ?? k : k;
        }
        var architecture = arch switch
        {
            "standard" => SaeArchitecture.Standard,
            "topk" => SaeArchitecture.TopK,
            "batchtopk" => SaeArchitecture.BatchTopK,
            "jumprelu" => SaeArchitecture.JumpReLU,
            "gated" => SaeArchitecture.Gated,
            "transcoder" => SaeArchitecture.Transcoder,
            "skip_transcoder" => SaeArchitecture.SkipTranscoder,
            _ => throw new SaeFileException(path, "architecture", $"'{arch}' is not supported; expected standard, topk, batchtopk, jumprelu, gated, transcoder or skip_transcoder."),
        };
        var normalize = (Str(root, "normalize_activations") ?? "none") switch
        {
            "none" => ActivationNormalization.None,
            "expected_average_only_in" => ActivationNormalization.ExpectedAverageOnlyIn,
            "constant_norm_rescale" => ActivationNormalization.ConstantNormRescale,
            "layer_norm" => ActivationNormalization.LayerNorm,
            var other => throw new SaeFileException(path, "normalize_activations", $"'{other}' is not one of none, expected_average_only_in, constant_norm_rescale, layer_norm."),
        };
        bool isTranscoder = architecture is SaeArchitecture.Transcoder or SaeArchitecture.SkipTranscoder;
        var config = new SaeConfig(architecture, Required("d_in"), Required("d_sae"))
        {
            DOut = Int(root, "d_out"),
            K = k,
            DType = Str(root, "dtype") is { } dtype ? CheckedDType(path, dtype) : "float32",
            ApplyBDecToInput = Bool(root, "apply_b_dec_to_input") ?? !isTranscoder,
            NormalizeActivations = normalize,
            ReshapeHookZ = Str(root, "reshape_activations") == "hook_z",
            Metadata = new SaeMetadata
            {
                ModelName = Str(meta, "model_name"),
                HookName = Str(meta, "hook_name") ?? Str(meta, "hook_point") ?? Str(root, "hook_name") ?? Str(root, "hook_point"),
                HookHeadIndex = Int(meta, "hook_head_index"),
                ContextSize = Int(meta, "context_size"),
                PrependBos = Bool(meta, "prepend_bos"),
                DatasetPath = Str(meta, "dataset_path"),
                NeuronpediaId = Str(meta, "neuronpedia_id"),
                HookNameOut = Str(meta, "hook_name_out") ?? Str(root, "hook_name_out"),
            },
        };
        try { return config.Validated(); }
        catch (ArgumentException e) { throw new SaeFileException(path, null, e.Message); }
    }

    static string CheckedDType(string path, string dtype)
    {
        try { SaeDTypes.Parse(dtype); return dtype; }
        catch (ArgumentException e) { throw new SaeFileException(path, "dtype", e.Message); }
    }

    /// <summary>SAELens 6.x cfg.json for this config.</summary>
    public static string ConfigJson(SaeConfig c)
    {
        string arch = c.Architecture switch
        {
            SaeArchitecture.Standard => "standard", SaeArchitecture.TopK => "topk",
            SaeArchitecture.JumpReLU or SaeArchitecture.BatchTopK => "jumprelu", // SAELens saves BatchTopK for inference as JumpReLU
            SaeArchitecture.Gated => "gated", SaeArchitecture.Transcoder => "transcoder", _ => "skip_transcoder",
        };
        var m = c.Metadata;
        var root = new JsonObject
        {
            ["architecture"] = arch, ["d_in"] = c.DIn, ["d_sae"] = c.DSae, ["dtype"] = c.DType,
            ["apply_b_dec_to_input"] = c.ApplyBDecToInput,
            ["normalize_activations"] = c.NormalizeActivations switch
            {
                ActivationNormalization.ExpectedAverageOnlyIn => "expected_average_only_in",
                ActivationNormalization.ConstantNormRescale => "constant_norm_rescale",
                ActivationNormalization.LayerNorm => "layer_norm",
                _ => "none",
            },
            ["reshape_activations"] = c.ReshapeHookZ ? "hook_z" : "none",
            ["metadata"] = new JsonObject
            {
                ["model_name"] = m.ModelName, ["hook_name"] = m.HookName, ["hook_head_index"] = m.HookHeadIndex,
                ["context_size"] = m.ContextSize, ["prepend_bos"] = m.PrependBos, ["dataset_path"] = m.DatasetPath,
                ["neuronpedia_id"] = m.NeuronpediaId, ["hook_name_out"] = m.HookNameOut,
            },
        };
        if (c.Architecture == SaeArchitecture.TopK) root["k"] = c.K;
        if (c.IsTranscoder) root["d_out"] = c.OutputDim;
        return root.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    static void WriteAtomically(string path, string text) => AtomicFile.WriteAllText(path, text);
}
