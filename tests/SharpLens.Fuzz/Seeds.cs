using System.Text;
using System.Text.Json.Nodes;
using SharpLens.Attribution;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Fuzz;

/// <summary>
/// The valid inputs every mutation starts from: the test suite's own fixtures (tests/SharpLens.Tests/Fixtures) and
/// a few files built here (tokenizers, a hub cache, an ONNX graph). Each seed is a folder's files by relative path.
/// </summary>
public sealed class Seeds
{
    public string Fixtures { get; }
    readonly Dictionary<string, Dictionary<string, byte[]>> _folders = [];

    public Seeds(string? fixtures = null)
    {
        Fixtures = fixtures ?? FindFixtures();
    }

    public static string FindFixtures()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "SharpLens.Tests", "Fixtures");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/SharpLens.Tests/Fixtures not found above " + AppContext.BaseDirectory);
    }

    /// <summary>The files of a fixture folder (golden.json and reference outputs left out).</summary>
    public Dictionary<string, byte[]> Folder(string relative)
    {
        if (!_folders.TryGetValue(relative, out var files))
        {
            string root = Path.Combine(Fixtures, relative);
            files = Directory.EnumerateFiles(root).Where(f => Path.GetFileName(f) is not ("golden.json" or "features.npy" or "output.npy"))
                .ToDictionary(f => Path.GetFileName(f), System.IO.File.ReadAllBytes);
            _folders[relative] = files;
        }
        return new Dictionary<string, byte[]>(files);
    }

    public byte[] File(string relative) => System.IO.File.ReadAllBytes(Path.Combine(Fixtures, relative));

    public Dictionary<string, byte[]> Gpt2 => Folder("gpt2-tiny-tied");
    public Dictionary<string, byte[]> PyTorch => Folder("pickle/gpt2-tiny-tied-bin");
    public Dictionary<string, byte[]> Bert => Folder("zoo/bert-tiny-f32");
    public Dictionary<string, byte[]> Sae => Folder("sae/standard");
    public byte[] Activations => File("sae/X.npy");
    public byte[] GemmaScope => File("sae/gemma_scope/params.npz");
    public byte[] Llama2cModel => File("llama2c/tiny-gqa-unshared.bin");
    public static readonly string[] ZooDecoders = ["llama-tied-f32", "mistral-sliding-f32", "qwen2-f32", "gemma-f32", "gemma2-f32", "neox-parallel-f32"];

    /// <summary>gpt2-tiny-tied as a sharded checkpoint: one shard plus model.safetensors.index.json.</summary>
    public Dictionary<string, byte[]> Gpt2Sharded()
    {
        var files = Gpt2;
        var (header, _) = Bytes.SplitSafeTensors(files["model.safetensors"]);
        var map = new JsonObject();
        foreach (var (name, _) in header) if (name != "__metadata__") map[name] = "model-00001-of-00001.safetensors";
        files["model-00001-of-00001.safetensors"] = files["model.safetensors"];
        files.Remove("model.safetensors");
        files["model.safetensors.index.json"] = Bytes.Utf8(new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = 0 }, ["weight_map"] = map }.ToJsonString());
        return files;
    }

    /// <summary>llama2.c tokenizer.bin for the 67-token fixture: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, then 64 byte / letter pieces.</summary>
    public byte[] Llama2cTokenizer()
    {
        var pieces = new List<byte[]> { Bytes.Utf8("<unk>"), Bytes.Utf8("\n<s>\n"), Bytes.Utf8("\n</s>\n") };
        for (int i = 0; pieces.Count < 67; i++) pieces.Add(i < 32 ? Bytes.Utf8($"<0x{i:X2}>") : Bytes.Utf8(((char)(' ' + i - 32)).ToString()));
        var s = new MemoryStream();
        var w = new BinaryWriter(s);
        w.Write(pieces.Max(p => p.Length));
        for (int id = 0; id < pieces.Count; id++) { w.Write((float)(id >= 35 ? -id : 0)); w.Write(pieces[id].Length); w.Write(pieces[id]); }
        return s.ToArray();
    }

    /// <summary>A byte-level BPE vocabulary of 101 ids (the fixture's d_vocab): printable bytes, Ġ, and a few merges.</summary>
    public (JsonObject Vocab, string[] Merges) Bpe()
    {
        var vocab = new JsonObject();
        int id = 0;
        for (char c = '!'; c <= '~'; c++) vocab[c.ToString()] = id++;     // 94 ids
        vocab["Ġ"] = id++;
        string[] merges = ["h e", "l l", "Ġ t", "he ll", "Ġ w", "o r"];
        foreach (var m in merges) vocab[m.Replace(" ", "")] = id++;        // 101 ids in all
        return (vocab, merges);
    }

    public Dictionary<string, byte[]> Gpt2WithVocabMerges()
    {
        var files = Gpt2;
        var (vocab, merges) = Bpe();
        files["vocab.json"] = Bytes.Utf8(vocab.ToJsonString());
        files["merges.txt"] = Bytes.Utf8("#version: 0.2\n" + string.Join("\n", merges) + "\n");
        return files;
    }

    public JsonObject TokenizerJson(string? splitRegex = null)
    {
        var (vocab, merges) = Bpe();
        JsonNode pre = splitRegex is null
            ? new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true }
            : new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = splitRegex }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false }),
            };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = pre,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["byte_fallback"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)JsonValue.Create(m)!)]),
            },
        };
    }

    /// <summary>
    /// A SentencePiece-style tokenizer.json (BPE with an unk token, Prepend / Replace normalizers, a TemplateProcessing
    /// post-processor that adds &lt;s&gt;): SharpLens's own byte-level reader refuses it, so Hugging Face's Rust tokenizers
    /// (Tokenizers.DotNet) read it. 40 ids, within the fixture's d_vocab of 101.
    /// </summary>
    public static JsonObject NativeTokenizerJson()
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2, ["\u2581"] = 3 };
        foreach (char ch in "abcdefghijklmnopqrstuvwxyz,!-") vocab[ch.ToString()] = vocab.Count;
        string[] merges = ["\u2581 h", "h e", "l l", "l o", "\u2581 w", "o r", "l d", "\u2581 t"];
        foreach (var m in merges) vocab[m.Replace(" ", "")] = vocab.Count;
        JsonObject Special(string content, int id) => new() { ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true };
        return new JsonObject
        {
            ["version"] = "1.0", ["truncation"] = null, ["padding"] = null,
            ["added_tokens"] = new JsonArray(Special("<unk>", 0), Special("<s>", 1), Special("</s>", 2)),
            ["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "\u2581" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "\u2581" }),
            },
            ["pre_tokenizer"] = null,
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = "<s>", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }),
                ["pair"] = new JsonArray(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "A", ["type_id"] = 0 } }, new JsonObject { ["Sequence"] = new JsonObject { ["id"] = "B", ["type_id"] = 1 } }),
                ["special_tokens"] = new JsonObject { ["<s>"] = new JsonObject { ["id"] = "<s>", ["ids"] = new JsonArray(1), ["tokens"] = new JsonArray("<s>") } },
            },
            ["decoder"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["decoders"] = new JsonArray(
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "\u2581" }, ["content"] = " " },
                    new JsonObject { ["type"] = "Fuse" },
                    new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 }),
            },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = "<unk>", ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = vocab, ["merges"] = new JsonArray([.. merges.Select(m => (JsonNode)JsonValue.Create(m)!)]),
            },
        };
    }

    public Dictionary<string, byte[]> Gpt2WithTokenizerJson(JsonObject? json = null)
    {
        var files = Gpt2;
        files["tokenizer.json"] = Bytes.Utf8((json ?? TokenizerJson()).ToJsonString());
        return files;
    }

    /// <summary>A BERT WordPiece vocab.txt.</summary>
    public static byte[] WordPieceVocab() =>
        Bytes.Utf8(string.Join("\n", new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "on", "mat", "a", "." }) + "\n");

    /// <summary>A Hugging Face cache (HF_HOME layout: hub/models--fuzz--model/...) holding gpt2-tiny-tied as copies, not links.</summary>
    public const string HubRepo = "fuzz/model", HubCommit = "0123456789abcdef0123456789abcdef01234567";

    public Dictionary<string, byte[]> HubCache(Dictionary<string, byte[]>? snapshot = null, string? commit = null)
    {
        string repo = "hub/models--fuzz--model";
        var files = new Dictionary<string, byte[]> { [$"{repo}/refs/main"] = Bytes.Utf8(commit ?? HubCommit) };
        foreach (var (name, data) in snapshot ?? Gpt2) files[$"{repo}/snapshots/{HubCommit}/{name}"] = data;
        foreach (var optional in new[] { "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json" })
            if (!files.ContainsKey($"{repo}/snapshots/{HubCommit}/{optional}")) files[$"{repo}/.no_exist/{HubCommit}/{optional}"] = [];
        return files;
    }

    /// <summary>A tiny ONNX graph: one MatMul with a float initializer W [3, 2].</summary>
    public static byte[] Onnx(long[]? dims = null, byte[]? raw = null, int dataType = 1) => Bytes.OnnxModel(
        [Bytes.OnnxTensor("W", dims ?? [3, 2], dataType, raw ?? new byte[24])],
        [Bytes.OnnxNode("MatMul", ["x", "W"], ["y"])]);

    // ---------------------------------------------------------------- formats added after the first corpus

    /// <summary>Writes files with a SharpLens writer into a temporary folder and returns them by path relative to it.</summary>
    static Dictionary<string, byte[]> Written(Action<string> write, string prefix)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sharplens-fuzz-seed-{Guid.NewGuid():N}");
        try
        {
            write(dir);
            return Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
                .ToDictionary(f => prefix + Path.GetRelativePath(dir, f).Replace('\\', '/'), System.IO.File.ReadAllBytes);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }

    /// <summary>A transcoder set for gpt2-tiny-tied (2 layers, d_model 32, 16 features), circuit-tracer's layout, under tc/.</summary>
    public static TranscoderSet MakeTranscoders(bool crossLayer, TranscoderActivation activation = TranscoderActivation.JumpRelu, bool skip = true)
    {
        var g = new TorchSharp.torch.Generator(3);
        const int layers = 2, dModel = 32, dTc = 16;
        var wEnc = TorchSharp.torch.randn(layers, dTc, dModel, generator: g) / Math.Sqrt(dModel);
        var bEnc = 0.1 * TorchSharp.torch.randn(layers, dTc, generator: g);
        var bDec = 0.1 * TorchSharp.torch.randn(layers, dModel, generator: g);
        var wDec = Enumerable.Range(0, layers).Select(l => 0.3 * TorchSharp.torch.randn(dTc, crossLayer ? layers - l : 1, dModel, generator: g) / Math.Sqrt(dTc)).ToArray();
        var threshold = activation == TranscoderActivation.JumpRelu ? 0.05 * TorchSharp.torch.rand(layers, dTc, generator: g) : null;
        var s = skip ? 0.1 * TorchSharp.torch.randn(layers, dModel, dModel, generator: g) / Math.Sqrt(dModel) : null;
        return new TranscoderSet(crossLayer, wEnc, bEnc, bDec, wDec, activation, threshold, activation == TranscoderActivation.TopK ? 4 : 0, s,
            "ln2.hook_normalized", "hook_mlp_out", "fuzz");
    }

    Dictionary<string, byte[]>? _plt, _clt, _graph, _checkpoint;

    /// <summary>Per-layer transcoders (layer_{i}.safetensors, JumpReLU, W_skip) for gpt2-tiny-tied, under tc/.</summary>
    public Dictionary<string, byte[]> Transcoders() => new(_plt ??= Written(dir => { using var set = MakeTranscoders(false); TranscoderFiles.Save(set, dir); }, "tc/"));

    /// <summary>A cross-layer transcoder (W_enc_{i} / W_dec_{i}.safetensors), under tc/.</summary>
    public Dictionary<string, byte[]> CrossLayerTranscoders() => new(_clt ??= Written(dir => { using var set = MakeTranscoders(true, TranscoderActivation.Relu, skip: false); TranscoderFiles.Save(set, dir); }, "tc/"));

    /// <summary>A dictionary_learning BatchTopK crosscoder folder (config.json, model.safetensors) and its input X.npy, under cc/.</summary>
    public Dictionary<string, byte[]> CrossCoder(string fixture = "crosscoder/batchtopk") =>
        Folder(fixture).Where(kv => kv.Key is not ("f.npy" or "recon.npy")).ToDictionary(kv => "cc/" + kv.Key, kv => kv.Value);

    /// <summary>graph.json of a real attribution graph (gpt2-tiny-tied with <see cref="Transcoders"/>, 4 tokens), as circuit-tracer writes it.</summary>
    public Dictionary<string, byte[]> GraphJson() => new(_graph ??= Written(dir =>
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        using var set = MakeTranscoders(false);
        using var model = HookedTransformer.FromPretrained(Path.Combine(Fixtures, "gpt2-tiny-tied"), processing: WeightProcessingOptions.None);
        var rm = new ReplacementModel(model, set);
        GraphFiles.AttributeAndWrite(rm, TorchSharp.torch.tensor(new long[] { 0, 5, 9, 12 }), dir, new AttributionOptions { BatchSize = 32 }, new GraphFileOptions());
    }, "").Where(kv => kv.Key == "graph.json").ToDictionary());

    /// <summary>
    /// What `sharplens train` leaves: the finished model folder run/ (Hugging Face layout) and its checkpoints
    /// run.checkpoints/step-000001 and step-000002 (TransformerLens config.json + model.safetensors, optimizer.safetensors,
    /// trainer.json, manifest.json with every file's size and SHA-256).
    /// </summary>
    public Dictionary<string, byte[]> Checkpoints() => new(_checkpoint ??= BuildCheckpoints());

    Dictionary<string, byte[]> BuildCheckpoints()
    {
        var files = Gpt2.ToDictionary(kv => "run/" + kv.Key, kv => kv.Value);
        using var model = HookedTransformer.FromPretrained(Path.Combine(Fixtures, "gpt2-tiny-tied"), processing: WeightProcessingOptions.None);
        foreach (int step in new[] { 1, 2 })
            foreach (var kv in CheckpointFolder(model, step)) files[$"run.checkpoints/step-{step:D6}/" + kv.Key] = kv.Value;
        return files;
    }

    static Dictionary<string, byte[]> CheckpointFolder(HookedTransformer model, int step) => Written(dir =>
    {
        model.Save(dir, new Dictionary<string, string> { ["step"] = step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        System.IO.File.WriteAllBytes(Path.Combine(dir, TrainingCheckpoint.OptimizerFile),
            Bytes.SafeTensors("{\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", BitConverter.GetBytes((long)step)));
        System.IO.File.WriteAllText(Path.Combine(dir, TrainingCheckpoint.StateFile), $"{{\"step\":{step}}}");
        CheckpointManifest.Write(dir);
    }, "");

    /// <summary>The manifest a checkpoint folder's files would have (the files relative to the folder, manifest left out).</summary>
    public static byte[] ManifestFor(IReadOnlyDictionary<string, byte[]> folderFiles) => Written(dir =>
    {
        foreach (var (name, data) in folderFiles)
        {
            if (name == CheckpointManifest.FileName) continue;
            string path = Path.Combine(dir, name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            System.IO.File.WriteAllBytes(path, data);
        }
        CheckpointManifest.Write(dir);
    }, "")[CheckpointManifest.FileName];

    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
