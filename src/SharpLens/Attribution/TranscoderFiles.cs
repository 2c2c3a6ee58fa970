using SharpLens.Interop;
using SharpLens.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// Reads and writes transcoder sets in the layouts circuit-tracer loads. A folder holds <c>config.yaml</c>
/// (<c>model_kind</c>: <c>transcoder_set</c> | <c>cross_layer_transcoder</c>, <c>feature_input_hook</c>,
/// <c>feature_output_hook</c>, optional <c>transcoders</c> list of files, <c>activation</c> relu | topk (+ <c>k</c>),
/// <c>scan</c>) and the weights:
/// <code>
/// PLT native        layer_{i}.safetensors: W_enc [d_tc, d_model], W_dec [d_tc, d_model], b_enc [d_tc], b_dec [d_model],
///                   optional activation_function.threshold [d_tc], W_skip [d_model, d_model] (skip = x W_skipᵀ), k
/// Gemma Scope       params.npz: W_enc [d_model, d_tc], W_dec [d_tc, d_model], b_enc, b_dec, threshold (JumpReLU)
/// Gemma Scope 2     *.safetensors: w_enc [d_model, d_tc], w_dec [d_tc, d_model], b_enc, b_dec, threshold,
///                   optional affine_skip_connection [d_model, d_model] (skip = x · it); as a CLT, per layer
///                   w_dec [d_tc, n_layers, d_model] of which layers i.. are used
/// CLT native        W_enc_{i}.safetensors: W_enc_{i} [d_tc, d_model], b_enc_{i}, b_dec_{i}, optional threshold_{i};
///                   W_dec_{i}.safetensors: W_dec_{i} [d_tc, n_layers − i, d_model]
/// </code>
/// Paths in <c>transcoders</c> are relative to the config's folder. Hooks are TransformerLens names under <c>blocks.{l}.</c>.
/// </summary>
public static class TranscoderFiles
{
    /// <summary>Loads the set in <paramref name="path"/> (a folder with config.yaml, or the config.yaml itself), as float32.</summary>
    public static TranscoderSet Load(string path)
    {
        string configPath = File.Exists(path) ? Path.GetFullPath(path) : Path.Combine(Path.GetFullPath(path), "config.yaml");
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new TranscoderFileException(path, null, "does not exist: give a folder holding config.yaml and the transcoder files (circuit-tracer's layout).");
        string folder = Path.GetDirectoryName(configPath)!;
        var config = TranscoderConfigYaml.Read(configPath);
        string kind = config.Require("model_kind");
        string input = config.Require("feature_input_hook"), output = config.Require("feature_output_hook");
        string scan = config.Get("scan") ?? folder;
        string? activation = config.Get("activation");
        int? k = config.Get("k") is { } ks ? (int.TryParse(ks, out int kv) && kv > 0 ? kv : throw new TranscoderFileException(configPath, "k", $"is '{ks}'; it must be a positive whole number (TopK's k).")) : null;
        if (activation is not (null or "relu" or "topk" or "jump_relu" or "jumprelu"))
            throw new TranscoderFileException(configPath, "activation", $"is '{activation}'; circuit-tracer knows relu and topk (absent: JumpReLU when thresholds are stored, else ReLU).");
        IReadOnlyList<string>? listed = config.Lists.TryGetValue("transcoders", out var l) ? [.. l.Select(p => Resolve(folder, p, configPath))] : null;
        if (listed is { Count: 0 })
            throw new TranscoderFileException(configPath, "transcoders", "lists no files; list one transcoder file per layer (or remove the list to read the files circuit-tracer names beside the config).");
        var set = kind switch
        {
            "transcoder_set" => LoadPerLayer(folder, configPath, listed, input, output, scan, activation, k),
            "cross_layer_transcoder" => listed is not null
                ? LoadGemmaScope2Clt(configPath, listed, input, output, scan)
                : LoadNativeClt(folder, configPath, input, output, scan, activation, k),
            _ => throw new TranscoderFileException(configPath, "model_kind", $"is '{kind}'; it must be transcoder_set (per-layer transcoders) or cross_layer_transcoder."),
        };
        set.SourcePath = configPath;
        return set;
    }

    static string Resolve(string folder, string listed, string configPath)
    {
        if (listed.StartsWith("hf://", StringComparison.Ordinal))
            throw new TranscoderFileException(configPath, "transcoders", $"lists '{listed}', a Hugging Face URI; SharpLens reads local files only. Download the file and list its path (relative to the config's folder).");
        return Path.IsPathRooted(listed) ? listed : Path.GetFullPath(Path.Combine(folder, listed));
    }

    // ---- per-layer transcoders ----

    sealed record Layer(Tensor WEnc, Tensor WDec, Tensor BEnc, Tensor BDec, Tensor? Threshold, Tensor? Skip, int? K);

    static TranscoderSet LoadPerLayer(string folder, string configPath, IReadOnlyList<string>? listed, string input, string output,
        string scan, string? activation, int? k)
    {
        var files = listed ?? NumberedFiles(folder, "layer_", configPath);
        var layers = new List<Layer>();
        try
        {
            foreach (var file in files)
            {
                if (!File.Exists(file)) throw new TranscoderFileException(file, null, $"is missing; {configPath} needs one file per layer 0..{files.Count - 1}.");
                try { layers.Add(file.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) ? ReadGemmaScope(file) : ReadSafetensorsLayer(file)); }
                catch (SharpLensException e) when (listed is not null && e is not TranscoderFileException)
                {
                    throw new TranscoderFileException(configPath, "transcoders", $"lists {file}, which cannot be read as a transcoder: {e.Message}");
                }
            }
            var first = layers[0];
            long dTc = first.BEnc.shape[0], dModel = first.BDec.shape[0];
            for (int i = 0; i < layers.Count; i++)
            {
                var ly = layers[i];
                CheckShape(files[i], "W_enc", ly.WEnc, [dTc, dModel], i);
                CheckShape(files[i], "W_dec", ly.WDec, [dTc, dModel], i);
                CheckShape(files[i], "b_enc", ly.BEnc, [dTc], i);
                CheckShape(files[i], "b_dec", ly.BDec, [dModel], i);
                if (ly.Threshold is not null) CheckShape(files[i], "threshold", ly.Threshold, [dTc], i);
                if (ly.Skip is not null) CheckShape(files[i], "W_skip", ly.Skip, [dModel, dModel], i);
                if ((ly.Skip is null) != (first.Skip is null))
                    throw new TranscoderFileException(files[i], "W_skip", $"is {(ly.Skip is null ? "absent" : "present")} here but {(first.Skip is null ? "absent" : "present")} in layer 0; every layer of a set has a skip connection or none does.");
                if ((ly.Threshold is null) != (first.Threshold is null) && activation is null)
                    throw new TranscoderFileException(files[i], "activation_function.threshold", "is stored in some layers but not others; a JumpReLU set stores it in every layer.");
            }
            var act = ActivationOf(activation, first.Threshold is not null);
            int kk = 0;
            if (act == TranscoderActivation.TopK)
                kk = k ?? first.K ?? throw new TranscoderFileException(configPath, "k", "is missing: activation topk needs k in config.yaml.");
            int n = layers.Count;
            var set = new TranscoderSet(false,
                torch.stack(layers.Select(x => x.WEnc)), torch.stack(layers.Select(x => x.BEnc)), torch.stack(layers.Select(x => x.BDec)),
                [.. layers.Select(x => x.WDec.unsqueeze(1).contiguous())], act,
                act == TranscoderActivation.JumpRelu ? torch.stack(layers.Select(x => x.Threshold!)) : null, kk,
                first.Skip is null ? null : torch.stack(layers.Select(x => x.Skip!)), input, output, scan);
            return set;
        }
        finally
        {
            foreach (var ly in layers) { ly.WEnc.Dispose(); ly.WDec.Dispose(); ly.BEnc.Dispose(); ly.BDec.Dispose(); ly.Threshold?.Dispose(); ly.Skip?.Dispose(); }
        }
    }

    static TranscoderActivation ActivationOf(string? activation, bool hasThreshold) => activation switch
    {
        "relu" => TranscoderActivation.Relu,
        "topk" => TranscoderActivation.TopK,
        "jump_relu" or "jumprelu" => TranscoderActivation.JumpRelu,
        _ => hasThreshold ? TranscoderActivation.JumpRelu : TranscoderActivation.Relu,
    };

    static List<string> NumberedFiles(string folder, string prefix, string configPath)
    {
        var found = Directory.Exists(folder) ? Directory.GetFiles(folder, prefix + "*.safetensors") : [];
        if (found.Length == 0)
            throw new TranscoderFileException(folder, null, $"has no {prefix}0.safetensors; {configPath} lists no transcoders, so circuit-tracer's layout ({prefix}{{i}}.safetensors for each layer) is expected.");
        var files = Enumerable.Range(0, found.Length).Select(i => Path.Combine(folder, $"{prefix}{i}.safetensors")).ToList();
        foreach (var f in files)
            if (!File.Exists(f)) throw new TranscoderFileException(f, null, $"is missing: {folder} holds {found.Length} {prefix}*.safetensors files, so layers 0..{found.Length - 1} must each have one.");
        return files;
    }

    static void CheckShape(string file, string key, Tensor t, long[] expected, int layer)
    {
        if (!t.shape.SequenceEqual(expected))
            throw new TranscoderFileException(file, key, $"has shape {ShapeText.Of(t.shape)} but layer {layer} needs {ShapeText.Of(expected)} (d_transcoder and d_model from b_enc and b_dec of layer 0).");
    }

    static Tensor F32(Tensor t) { var r = t.to(ScalarType.Float32); if (!ReferenceEquals(r, t)) t.Dispose(); return r; }

    static Tensor Take(SafeTensorsFile f, string key) => f.Contains(key) ? F32(f.Read(key))
        : throw new TranscoderFileException(f.FilePath, key, $"is missing; the file holds {string.Join(", ", f.Names.Take(8))}.");

    static Layer ReadSafetensorsLayer(string file)
    {
        using var f = SafeTensorsFile.Open(file);
        if (f.Contains("w_enc")) // Gemma Scope 2: encoder [d_model, d_tc], skip applied as x · affine_skip_connection
            return new Layer(Transposed(Take(f, "w_enc")), Take(f, "w_dec"), Take(f, "b_enc"), Take(f, "b_dec"),
                Take(f, "threshold"), f.Contains("affine_skip_connection") ? Take(f, "affine_skip_connection") : null, null);
        int? k = f.Contains("k") ? (int)f.Read("k").to(ScalarType.Int64).item<long>() : null;
        return new Layer(Take(f, "W_enc"), Take(f, "W_dec"), Take(f, "b_enc"), Take(f, "b_dec"),
            f.Contains("activation_function.threshold") ? Take(f, "activation_function.threshold") : null,
            f.Contains("W_skip") ? Transposed(Take(f, "W_skip")) : null, k);
    }

    static Tensor Transposed(Tensor t) { var r = t.t().contiguous(); t.Dispose(); return r; }

    static Layer ReadGemmaScope(string file)
    {
        var arrays = NumpyFiles.LoadNpz(file);
        try
        {
            Tensor Get(string key) => arrays.Remove(key, out var t) ? F32(t)
                : throw new TranscoderFileException(file, key, $"is missing; Gemma Scope's params.npz holds W_enc, W_dec, b_enc, b_dec and threshold (found {string.Join(", ", arrays.Keys)}).");
            return new Layer(Transposed(Get("W_enc")), Get("W_dec"), Get("b_enc"), Get("b_dec"), Get("threshold"), null, null);
        }
        finally { foreach (var t in arrays.Values) t.Dispose(); }
    }

    // ---- cross-layer transcoders ----

    static TranscoderSet LoadNativeClt(string folder, string configPath, string input, string output, string scan, string? activation, int? k)
    {
        var encFiles = NumberedFiles(folder, "W_enc_", configPath);
        int n = encFiles.Count;
        var wEnc = new List<Tensor>(); var bEnc = new List<Tensor>(); var bDec = new List<Tensor>(); var thr = new List<Tensor>();
        var wDec = new Tensor[n];
        try
        {
            long dTc = 0, dModel = 0;
            for (int i = 0; i < n; i++)
            {
                using (var f = SafeTensorsFile.Open(encFiles[i]))
                {
                    wEnc.Add(Take(f, $"W_enc_{i}"));
                    if (i == 0) (dTc, dModel) = (wEnc[0].shape[0], wEnc[0].shape[1]);
                    CheckShape(encFiles[i], $"W_enc_{i}", wEnc[i], [dTc, dModel], i);
                    bEnc.Add(Take(f, $"b_enc_{i}")); CheckShape(encFiles[i], $"b_enc_{i}", bEnc[i], [dTc], i);
                    bDec.Add(Take(f, $"b_dec_{i}")); CheckShape(encFiles[i], $"b_dec_{i}", bDec[i], [dModel], i);
                    if (f.Contains($"threshold_{i}")) { thr.Add(Take(f, $"threshold_{i}").reshape(-1)); CheckShape(encFiles[i], $"threshold_{i}", thr[^1], [dTc], i); }
                }
                string decFile = Path.Combine(folder, $"W_dec_{i}.safetensors");
                if (!File.Exists(decFile)) throw new TranscoderFileException(decFile, null, $"is missing: a cross-layer transcoder with {n} W_enc_*.safetensors files needs W_dec_0..W_dec_{n - 1}.safetensors beside them.");
                using (var f = SafeTensorsFile.Open(decFile))
                {
                    wDec[i] = Take(f, $"W_dec_{i}");
                    if (!wDec[i].shape.SequenceEqual([dTc, n - i, dModel]))
                        throw new TranscoderFileException(decFile, $"W_dec_{i}", $"has shape {ShapeText.Of(wDec[i].shape)} but a feature read at layer {i} of {n} writes to layers {i}..{n - 1}, so it must be [d_transcoder = {dTc}, {n - i}, d_model = {dModel}].");
                }
            }
            if (thr.Count is not 0 && thr.Count != n)
                throw new TranscoderFileException(folder, "threshold_{i}", $"is stored for {thr.Count} of {n} layers; a JumpReLU CLT stores it for every layer.");
            var act = ActivationOf(activation, thr.Count == n);
            int kk = act == TranscoderActivation.TopK ? k ?? throw new TranscoderFileException(configPath, "k", "is missing: activation topk needs k.") : 0;
            var set = new TranscoderSet(true, torch.stack(wEnc), torch.stack(bEnc), torch.stack(bDec), wDec, act,
                act == TranscoderActivation.JumpRelu ? torch.stack(thr) : null, kk, null, input, output, scan);
            return set;
        }
        catch
        {
            foreach (var t in wDec) t?.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in wEnc.Concat(bEnc).Concat(bDec).Concat(thr)) t.Dispose();
        }
    }

    static TranscoderSet LoadGemmaScope2Clt(string configPath, IReadOnlyList<string> files, string input, string output, string scan)
    {
        int n = files.Count;
        var wEnc = new List<Tensor>(); var bEnc = new List<Tensor>(); var bDec = new List<Tensor>(); var thr = new List<Tensor>(); var skip = new List<Tensor>();
        var wDec = new Tensor[n];
        try
        {
            long dTc = 0, dModel = 0;
            for (int i = 0; i < n; i++)
            {
                if (!File.Exists(files[i])) throw new TranscoderFileException(files[i], null, $"is missing; {configPath} lists it as layer {i}.");
                using var f = SafeTensorsFile.Open(files[i]);
                wEnc.Add(Transposed(Take(f, "w_enc")));
                if (i == 0) (dTc, dModel) = (wEnc[0].shape[0], wEnc[0].shape[1]);
                CheckShape(files[i], "w_enc (transposed)", wEnc[i], [dTc, dModel], i);
                bEnc.Add(Take(f, "b_enc")); CheckShape(files[i], "b_enc", bEnc[i], [dTc], i);
                bDec.Add(Take(f, "b_dec")); CheckShape(files[i], "b_dec", bDec[i], [dModel], i);
                thr.Add(Take(f, "threshold")); CheckShape(files[i], "threshold", thr[i], [dTc], i);
                using var dec = Take(f, "w_dec");
                if (!dec.shape.SequenceEqual([dTc, n, dModel]))
                    throw new TranscoderFileException(files[i], "w_dec", $"has shape {ShapeText.Of(dec.shape)}; a Gemma Scope 2 CLT layer stores [d_sae = {dTc}, n_layers = {n}, d_in = {dModel}].");
                wDec[i] = dec.narrow(1, i, n - i).contiguous();
                if (f.Contains("affine_skip_connection")) skip.Add(Take(f, "affine_skip_connection"));
            }
            if (skip.Count is not 0 && skip.Count != n) throw new TranscoderFileException(configPath, "affine_skip_connection", $"is in {skip.Count} of {n} layer files; all or none must have it.");
            return new TranscoderSet(true, torch.stack(wEnc), torch.stack(bEnc), torch.stack(bDec), wDec, TranscoderActivation.JumpRelu,
                torch.stack(thr), 0, skip.Count == n ? torch.stack(skip) : null, input, output, scan);
        }
        catch
        {
            foreach (var t in wDec) t?.Dispose();
            throw;
        }
        finally
        {
            foreach (var t in wEnc.Concat(bEnc).Concat(bDec).Concat(thr).Concat(skip)) t.Dispose();
        }
    }

    // ---- saving ----

    /// <summary>
    /// Writes the set in circuit-tracer's native layout (layer_{i}.safetensors, or W_enc_{i}/W_dec_{i} for a CLT) with its
    /// config.yaml, float32. The folder is written whole under a temporary name and renamed into place, so it is either
    /// the old folder or the new one, never half of each; <paramref name="alsoWrite"/> may add files (an eval.json) to it first.
    /// </summary>
    public static void Save(TranscoderSet set, string folder, Action<string>? alsoWrite = null)
    {
        if (set.CrossLayer && set.HasSkip)
            throw new AttributionArgumentException("set", "circuit-tracer's cross-layer transcoder files have no skip connection; this CLT has one, so it cannot be saved in that layout.");
        string target = Path.GetFullPath(folder);
        IO.AtomicFile.WriteFolder(target, temporary =>
        {
            WriteInto(set, temporary, target);
            alsoWrite?.Invoke(temporary);
        });
    }

    static void WriteInto(TranscoderSet set, string folder, string finalFolder)
    {
        using var scope = torch.NewDisposeScope();
        Tensor C(Tensor t) => t.to(ScalarType.Float32).cpu().contiguous();
        for (int i = 0; i < set.NLayers; i++)
        {
            if (!set.CrossLayer)
            {
                var tensors = new List<KeyValuePair<string, Tensor>>
                {
                    new("W_enc", C(set.W_enc[i])), new("W_dec", C(set.W_dec[i].squeeze(1))), new("b_enc", C(set.b_enc[i])), new("b_dec", C(set.b_dec[i])),
                };
                if (set.Activation == TranscoderActivation.JumpRelu) tensors.Add(new("activation_function.threshold", C(set.Threshold![i])));
                if (set.Activation == TranscoderActivation.TopK) tensors.Add(new("k", torch.tensor((long)set.K)));
                if (set.Skip is not null) tensors.Add(new("W_skip", C(set.Skip[i].t())));
                SafeTensorsWriter.Write(Path.Combine(folder, $"layer_{i}.safetensors"), tensors);
            }
            else
            {
                var enc = new List<KeyValuePair<string, Tensor>> { new($"W_enc_{i}", C(set.W_enc[i])), new($"b_enc_{i}", C(set.b_enc[i])), new($"b_dec_{i}", C(set.b_dec[i])) };
                if (set.Activation == TranscoderActivation.JumpRelu) enc.Add(new($"threshold_{i}", C(set.Threshold![i])));
                SafeTensorsWriter.Write(Path.Combine(folder, $"W_enc_{i}.safetensors"), enc);
                SafeTensorsWriter.Write(Path.Combine(folder, $"W_dec_{i}.safetensors"), [new($"W_dec_{i}", C(set.W_dec[i]))]);
            }
        }
        var scalars = new List<(string, string)>
        {
            ("model_kind", set.CrossLayer ? "cross_layer_transcoder" : "transcoder_set"),
            ("feature_input_hook", set.FeatureInputHook), ("feature_output_hook", set.FeatureOutputHook),
        };
        if (set.Activation == TranscoderActivation.Relu) scalars.Add(("activation", "relu"));
        if (set.Activation == TranscoderActivation.TopK) { scalars.Add(("activation", "topk")); scalars.Add(("k", set.K.ToString(System.Globalization.CultureInfo.InvariantCulture))); }
        if (!string.IsNullOrEmpty(set.Scan) && Path.GetFullPath(set.Scan) != finalFolder) scalars.Add(("scan", set.Scan));
        File.WriteAllText(Path.Combine(folder, "config.yaml"), TranscoderConfigYaml.Format(scalars));
    }
}
