using System.Text;
using System.Text.Json.Nodes;

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

    public static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
