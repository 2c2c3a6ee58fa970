using System.Text;
using System.Text.Json.Nodes;
using SharpLens.Training;

namespace SharpLens.Fuzz;

/// <summary>
/// The deterministic corpus: case i is the same bytes on every machine and every run. Formats take turns, so any
/// prefix of the corpus covers them all; within a format the structured corruptions come first (each a named
/// hostile value in a named field), then byte-level mutations of the format's valid seed, drawn from a generator
/// seeded by the case index.
/// </summary>
public sealed class Corpus
{
    /// <summary>A number that every parser must refuse or survive, by the name the report uses.</summary>
    public static readonly (string Name, JsonNode? Value)[] HostileNumbers =
    [
        ("zero", 0), ("negative", -1), ("int32-max", int.MaxValue), ("2^31", 2147483648L), ("2^32+1", 4294967297L),
        ("2^62", 1L << 62), ("1e300", 1e300), ("fraction", 1.5), ("string", "12"), ("null", null), ("bool", true), ("array", new JsonArray()),
    ];

    /// <summary>The marker a pickle's payload would create if anything from the file ran (the runner checks it is never there).</summary>
    public const string Marker = "CODE_EXECUTED";

    readonly Seeds _seeds;
    readonly List<(string Format, List<Func<int, FuzzCase>> Structured, Func<int, Random, FuzzCase> Mutation)> _formats;

    public Corpus(Seeds seeds)
    {
        _seeds = seeds;
        _formats =
        [
            ("safetensors", SafeTensorsCases(), (i, r) => Mutate(i, "safetensors", r, _seeds.Gpt2, "model.safetensors", FuzzTarget.ModelFolder)),
            ("config", ConfigCases(), (i, r) => Mutate(i, "config", r, _seeds.Gpt2, "config.json", FuzzTarget.ModelFolder)),
            ("shard-index", ShardIndexCases(), (i, r) => Mutate(i, "shard-index", r, _seeds.Gpt2Sharded(), "model.safetensors.index.json", FuzzTarget.ModelFolder)),
            ("pytorch", PyTorchCases(), (i, r) => Mutate(i, "pytorch", r, _seeds.PyTorch, "pytorch_model.bin", FuzzTarget.ModelFolder)),
            ("llama2c", Llama2cCases(), (i, r) => Mutate(i, "llama2c", r, new() { ["model.bin"] = _seeds.Llama2cModel }, "model.bin", FuzzTarget.Llama2c)),
            ("llama2c-tokenizer", Llama2cTokenizerCases(), (i, r) => Mutate(i, "llama2c-tokenizer", r,
                new() { ["model.bin"] = _seeds.Llama2cModel, ["tokenizer.bin"] = _seeds.Llama2cTokenizer() }, "tokenizer.bin", FuzzTarget.Llama2c)),
            ("bpe-vocab", BpeCases(), (i, r) => Mutate(i, "bpe-vocab", r, _seeds.Gpt2WithVocabMerges(), r.Next(2) == 0 ? "vocab.json" : "merges.txt", FuzzTarget.Tokenizer)),
            ("tokenizer-json", TokenizerJsonCases(), (i, r) => Mutate(i, "tokenizer-json", r, _seeds.Gpt2WithTokenizerJson(), "tokenizer.json", FuzzTarget.Tokenizer)),
            ("wordpiece", WordPieceCases(), (i, r) => Mutate(i, "wordpiece", r, new() { ["vocab.txt"] = Seeds.WordPieceVocab() }, "vocab.txt", FuzzTarget.WordPiece)),
            ("bert", BertCases(), (i, r) => Mutate(i, "bert", r, _seeds.Bert, r.Next(3) == 0 ? "config.json" : "model.safetensors", FuzzTarget.EncoderFolder)),
            ("sae", SaeCases(), (i, r) => Mutate(i, "sae", r, SaeFolder(), r.Next(2) == 0 ? "sae/cfg.json" : "sae/sae_weights.safetensors", FuzzTarget.Sae)),
            ("npy", NpyCases(), (i, r) => Mutate(i, "npy", r, new() { ["x.npy"] = _seeds.Activations }, "x.npy", FuzzTarget.Npy)),
            ("npz", NpzCases(), (i, r) => Mutate(i, "npz", r, new() { ["params.npz"] = _seeds.GemmaScope }, "params.npz", FuzzTarget.Npz)),
            ("hub-cache", HubCases(), (i, r) => Mutate(i, "hub-cache", r, _seeds.HubCache(), r.Next(2) == 0
                ? "hub/models--fuzz--model/refs/main" : $"hub/models--fuzz--model/snapshots/{Seeds.HubCommit}/model.safetensors", FuzzTarget.HubCache)),
            ("onnx", OnnxCases(), (i, r) => Mutate(i, "onnx", r, new() { ["model.onnx"] = Seeds.Onnx() }, "model.onnx", FuzzTarget.Onnx)),
            ("model-file", ModelFileCases(), (i, r) => Mutate(i, "model-file", r, _seeds.Gpt2, "model.safetensors", FuzzTarget.ModelFile)),
            ("transcoders", TranscoderCases(), (i, r) => Mutate(i, "transcoders", r, _seeds.Transcoders(),
                new[] { "tc/config.yaml", "tc/layer_0.safetensors", "tc/layer_1.safetensors" }[r.Next(3)], FuzzTarget.Transcoders)),
            ("crosscoder", CrossCoderCases(), (i, r) => Mutate(i, "crosscoder", r, _seeds.CrossCoder(), r.Next(2) == 0 ? "cc/config.json" : "cc/model.safetensors", FuzzTarget.CrossCoder)),
            ("graph-json", GraphJsonCases(), (i, r) => Mutate(i, "graph-json", r, _seeds.GraphJson(), "graph.json", FuzzTarget.GraphJson)),
            ("checkpoint", CheckpointCases(), (i, r) => Mutate(i, "checkpoint", r, _seeds.Checkpoints(),
                Step2 + new[] { "config.json", "model.safetensors", "manifest.json", "trainer.json", "optimizer.safetensors" }[r.Next(5)], FuzzTarget.Checkpoint)),
            ("tokenizer-json-native", NativeTokenizerJsonCases(), (i, r) => Mutate(i, "tokenizer-json-native", r, _seeds.Gpt2WithTokenizerJson(Seeds.NativeTokenizerJson()), "tokenizer.json", FuzzTarget.Tokenizer)),
        ];
    }

    public IReadOnlyList<string> Formats => [.. _formats.Select(f => f.Format)];

    /// <summary>How many formats the corpus had before transcoders, crosscoders, graph.json and checkpoints were added.</summary>
    public const int LegacyFormats = 16;

    /// <summary>How many formats it had before tokenizer-json-native was added (their mutations keep the keys they had then).</summary>
    public const int Session5Formats = 20;

    /// <summary>How many structured (named) corruptions each format has.</summary>
    public int StructuredCount(string format) => _formats.First(f => f.Format == format).Structured.Count;

    /// <summary>The corpus index of the <paramref name="k"/>-th case of <paramref name="format"/> (structured ones first).</summary>
    public int IndexOf(string format, int k) => _formats.FindIndex(f => f.Format == format) + k * _formats.Count;

    /// <summary>Case <paramref name="index"/> of the corpus.</summary>
    public FuzzCase Case(int index)
    {
        int f = index % _formats.Count, k = index / _formats.Count;
        var (_, structured, mutation) = _formats[f];
        // Formats draw their mutations from the index they had before the corpus grew (16, then 20 formats), so their bytes
        // (and the README's counts, and FuzzFindingsTests' cases) stay what they were measured as.
        int key = f < LegacyFormats ? f + k * LegacyFormats : f < Session5Formats ? f + k * Session5Formats : index;
        return k < structured.Count ? structured[k](index) : mutation(index, new Random(unchecked(key * 7919 + 17)));
    }

    /// <summary>The valid seed of each format, as case -1 - f: a check that the corpus starts from inputs SharpLens accepts.</summary>
    public FuzzCase Seed(int f) => _formats[f].Mutation(-1 - f, new Random(0)) with { Class = "seed" };

    Dictionary<string, byte[]> SaeFolder()
    {
        var files = _seeds.Sae.ToDictionary(kv => "sae/" + kv.Key, kv => kv.Value);
        files["X.npy"] = _seeds.Activations;
        return files;
    }

    // ---------------------------------------------------------------- mutations of valid files

    static readonly string[] MutationClasses = ["truncate", "bitflip", "byte-set", "int-splice", "chunk-delete", "chunk-duplicate", "zero-fill", "garbage-tail"];

    FuzzCase Mutate(int index, string format, Random r, Dictionary<string, byte[]> files, string target, FuzzTarget kind)
    {
        if (index < 0) return new FuzzCase(index, format, "seed", "the valid seed", kind, files, target);
        var data = files[target];
        string cls = MutationClasses[r.Next(MutationClasses.Length)];
        byte[] mutated;
        string what;
        int n = data.Length;
        // Headers are where the sizes live: half of all positions fall in the first 256 bytes.
        int Pos() => n == 0 ? 0 : (r.Next(2) == 0 ? r.Next(Math.Min(n, 256)) : r.Next(n));
        switch (cls)
        {
            case "truncate": { int at = Pos(); mutated = data[..at]; what = $"cut to {at} of {n} bytes"; break; }
            case "bitflip":
            {
                mutated = (byte[])data.Clone();
                int flips = 1 + r.Next(8);
                for (int j = 0; j < flips && n > 0; j++) { int at = Pos(); mutated[at] ^= (byte)(1 << r.Next(8)); }
                what = $"{flips} bit flips";
                break;
            }
            case "byte-set":
            {
                mutated = (byte[])data.Clone();
                int at = Pos();
                byte[] choices = [0x00, 0xFF, 0x7F, 0x80, (byte)'"', (byte)'{', (byte)'[', (byte)'9', (byte)'-', (byte)'\n', 0x28, 0x2E];
                if (n > 0) mutated[at] = choices[r.Next(choices.Length)];
                what = $"byte {at} set";
                break;
            }
            case "int-splice":
            {
                mutated = (byte[])data.Clone();
                int at = n < 8 ? 0 : Pos() & ~3;
                long[] values = [int.MaxValue, int.MinValue, -1, 0, 1L << 31, 1L << 32, long.MaxValue, 1L << 40, 65536, 1 << 24];
                byte[] v = BitConverter.GetBytes(values[r.Next(values.Length)]);
                int width = r.Next(2) == 0 ? 4 : 8;
                for (int j = 0; j < width && at + j < n; j++) mutated[at + j] = v[j];
                what = $"{width}-byte integer written at {at}";
                break;
            }
            case "chunk-delete": { int at = Pos(), len = Math.Min(n - at, 1 + r.Next(64)); mutated = [.. data[..at], .. data[(at + len)..]]; what = $"{len} bytes deleted at {at}"; break; }
            case "chunk-duplicate": { int at = Pos(), len = Math.Min(n - at, 1 + r.Next(64)); mutated = [.. data[..(at + len)], .. data[at..(at + len)], .. data[(at + len)..]]; what = $"{len} bytes repeated at {at}"; break; }
            case "zero-fill": { int at = Pos(), len = Math.Min(n - at, 1 + r.Next(256)); mutated = (byte[])data.Clone(); Array.Clear(mutated, at, len); what = $"{len} bytes zeroed at {at}"; break; }
            default: { var tail = new byte[1 + r.Next(512)]; r.NextBytes(tail); mutated = [.. data, .. tail]; what = $"{tail.Length} random bytes appended"; break; }
        }
        var copy = new Dictionary<string, byte[]>(files) { [target] = mutated };
        return new FuzzCase(index, format, "mutation-" + cls, $"{target}: {what}", kind, copy, target);
    }

    // ---------------------------------------------------------------- structured corruptions

    static FuzzCase Make(int index, string format, string cls, string description, FuzzTarget target, Dictionary<string, byte[]> files, string main, string? mention = null) =>
        new(index, format, cls, description, target, files, main, mention);

    List<Func<int, FuzzCase>> SafeTensorsCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<byte[]> file, string? mention = null) =>
            list.Add(i => { var f = _seeds.Gpt2; f["model.safetensors"] = file(); return Make(i, "safetensors", cls, description, FuzzTarget.ModelFolder, f, "model.safetensors", mention); });
        byte[] Seed() => _seeds.Gpt2["model.safetensors"];
        byte[] WithEntry(Action<JsonObject> edit)
        {
            var (header, data) = Bytes.SplitSafeTensors(Seed());
            var entry = header["wte.weight"]!.AsObject();
            edit(entry);
            return Bytes.SafeTensors(header.ToJsonString(), data);
        }
        foreach (ulong length in new[] { ulong.MaxValue, 1UL << 63, 1UL << 32, 100_000_001UL, 0UL })
            Add("header-length", $"header length {length}", () => [.. Bytes.UInt64(length), .. Seed()[8..]]);
        Add("empty", "0 bytes", () => []);
        Add("header-not-json", "header is not JSON", () => Bytes.SafeTensors("{not json", new byte[16]));
        Add("header-not-object", "header is an array", () => Bytes.SafeTensors("[1,2,3]", []));
        Add("deep-nesting", "header nested 100000 deep", () => Bytes.SafeTensors(new string('[', 100_000) + new string(']', 100_000), []));
        Add("deep-nesting", "header entry nested 5000 deep", () => Bytes.SafeTensors("{\"a\":" + new string('[', 5000) + new string(']', 5000) + "}", []));
        foreach (var (name, shape) in new (string, string)[]
        {
            ("huge-dims", "[2147483647, 2147483647]"), ("overflow", "[4294967296, 4294967296, 4294967296]"), ("negative", "[-1, 32]"),
            ("1e300", "[1e300, 32]"), ("fraction", "[1.5, 32]"), ("zero", "[0, 32]"), ("string", "[\"101\", 32]"), ("many-dims", "[" + string.Join(",", Enumerable.Repeat("1", 10000)) + "]"),
        })
            Add("shape-" + name, $"wte shape {shape[..Math.Min(40, shape.Length)]}", () => WithEntry(e => e["shape"] = JsonNode.Parse(shape)), "wte.weight");
        foreach (var (name, offsets) in new (string, string)[]
        {
            ("past-end", "[0, 99999999]"), ("reversed", "[100, 0]"), ("negative", "[-4, 100]"), ("huge", "[0, 9223372036854775807]"), ("three", "[0, 1, 2]"), ("overlap", "[0, 12928]"),
        })
            Add("offsets-" + name, $"wte data_offsets {offsets}", () => WithEntry(e => e["data_offsets"] = JsonNode.Parse(offsets)), "wte.weight");
        foreach (var dtype in new[] { "F64", "U8", "XYZ", "", "f32" })
            Add("dtype", $"wte dtype '{dtype}'", () => WithEntry(e => e["dtype"] = dtype), "wte.weight");
        Add("missing-field", "wte entry has no shape", () => WithEntry(e => e.Remove("shape")), "wte.weight");
        Add("metadata", "__metadata__ holds a number", () => { var (h, d) = Bytes.SplitSafeTensors(Seed()); h["__metadata__"] = new JsonObject { ["format"] = 5 }; return Bytes.SafeTensors(h.ToJsonString(), d); });
        Add("duplicate-key", "wte listed twice", () =>
        {
            var (h, d) = Bytes.SplitSafeTensors(Seed());
            string text = h.ToJsonString();
            string wte = "\"transformer.wte.weight\":" + h["wte.weight"]!.ToJsonString();
            return Bytes.SafeTensors(text.Insert(1, wte + ","), d);
        });
        Add("truncated-data", "data area cut in half", () => { var s = Seed(); return s[..(s.Length / 2 + 600)]; });
        Add("missing-tensor", "wte removed", () => { var (h, d) = Bytes.SplitSafeTensors(Seed()); h.Remove("wte.weight"); return Bytes.SafeTensors(h.ToJsonString(), d); }, "wte");
        Add("extra-tensor", "an unknown tensor added", () =>
        {
            var (h, d) = Bytes.SplitSafeTensors(Seed());
            h["h.7.attn.c_attn.weight"] = new JsonObject { ["dtype"] = "F32", ["shape"] = new JsonArray(1), ["data_offsets"] = new JsonArray(d.Length, d.Length + 4) };
            return Bytes.SafeTensors(h.ToJsonString(), [.. d, 0, 0, 0, 0]);
        }, "h.7");
        Add("shape-mismatch", "wte shape swapped to [32, 101]", () => WithEntry(e => e["shape"] = new JsonArray(32, 101)), "wte");
        Add("long-name", "a 1 MB tensor name", () =>
        {
            var (h, d) = Bytes.SplitSafeTensors(Seed());
            h[new string('x', 1 << 20)] = new JsonObject { ["dtype"] = "F32", ["shape"] = new JsonArray(0), ["data_offsets"] = new JsonArray(0, 0) };
            return Bytes.SafeTensors(h.ToJsonString(), d);
        });
        return list;
    }

    List<Func<int, FuzzCase>> ConfigCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void AddFor(string seedName, Func<Dictionary<string, byte[]>> seed, string[] fields)
        {
            foreach (string field in fields)
                foreach (var (name, value) in HostileNumbers)
                    list.Add(i =>
                    {
                        var files = seed();
                        var json = JsonNode.Parse(files["config.json"])!.AsObject();
                        json[field] = value?.DeepClone();
                        files["config.json"] = Bytes.Utf8(json.ToJsonString());
                        return Make(i, "config", "value-" + name, $"{seedName} config.json {field} = {value?.ToJsonString() ?? "null"}", FuzzTarget.ModelFolder, files, "config.json", field);
                    });
        }
        AddFor("gpt2", () => _seeds.Gpt2, ["n_layer", "n_head", "n_embd", "vocab_size", "n_positions", "n_inner", "layer_norm_epsilon"]);
        AddFor("llama", () => _seeds.Folder("zoo/llama-tied-f32"), ["num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_size", "intermediate_size", "vocab_size", "head_dim", "rope_theta", "max_position_embeddings", "rms_norm_eps"]);
        AddFor("mistral", () => _seeds.Folder("zoo/mistral-sliding-f32"), ["sliding_window"]);
        AddFor("neox", () => _seeds.Folder("zoo/neox-parallel-f32"), ["rotary_pct", "num_attention_heads", "hidden_size"]);
        AddFor("gemma2", () => _seeds.Folder("zoo/gemma2-f32"), ["attn_logit_softcapping", "final_logit_softcapping", "query_pre_attn_scalar"]);
        foreach (var (cls, text) in new (string, string)[]
        {
            ("empty", ""), ("not-json", "{\"model_type\": \"gpt2\", "), ("array", "[]"), ("deep-nesting", new string('[', 100_000) + new string(']', 100_000)),
            ("deep-nesting", "{\"model_type\":\"gpt2\",\"x\":" + new string('{', 1) + string.Concat(Enumerable.Repeat("\"a\":{", 3000)) + new string('}', 3001) + "}"),
            ("unknown-type", "{\"model_type\": \"t5\"}"), ("type-number", "{\"model_type\": 7}"), ("bom", "\uFEFF{\"model_type\": \"gpt2\"}"),
            ("huge-string", "{\"model_type\": \"" + new string('g', 5 << 20) + "\"}"),
        })
            list.Add(i => { var f = _seeds.Gpt2; f["config.json"] = Bytes.Utf8(text); return Make(i, "config", cls, $"config.json {cls}", FuzzTarget.ModelFolder, f, "config.json"); });
        list.Add(i => { var f = _seeds.Gpt2; f.Remove("config.json"); return Make(i, "config", "missing", "no config.json", FuzzTarget.ModelFolder, f, "config.json"); });
        list.Add(i =>
        {
            var f = _seeds.Gpt2;
            var json = JsonNode.Parse(f["config.json"])!.AsObject();
            json["n_layer"] = 100_000; json["n_embd"] = 100_000; json["vocab_size"] = 1_000_000;
            f["config.json"] = Bytes.Utf8(json.ToJsonString());
            return Make(i, "config", "huge-model", "gpt2 of 10^15 parameters (memory check)", FuzzTarget.ModelFolder, f, "config.json");
        });
        return list;
    }

    List<Func<int, FuzzCase>> ShardIndexCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<JsonObject, JsonNode?> edit, string? mention = null) => list.Add(i =>
        {
            var f = _seeds.Gpt2Sharded();
            var json = JsonNode.Parse(f["model.safetensors.index.json"])!.AsObject();
            var replaced = edit(json);
            f["model.safetensors.index.json"] = Bytes.Utf8(replaced?.ToJsonString() ?? "null");
            return Make(i, "shard-index", cls, description, FuzzTarget.ModelFolder, f, "model.safetensors.index.json", mention);
        });
        Add("traversal", "a shard named ../../../../etc/passwd", j => { j["weight_map"]!["wte.weight"] = "../../../../etc/passwd"; return j; }, "wte.weight");
        Add("absolute", "a shard named /etc/passwd", j => { j["weight_map"]!["wte.weight"] = "/etc/passwd"; return j; }, "wte.weight");
        Add("missing-shard", "a shard that does not exist", j => { j["weight_map"]!["wte.weight"] = "model-00002-of-00002.safetensors"; return j; }, "model-00002-of-00002.safetensors");
        Add("not-string", "a weight_map value that is a number", j => { j["weight_map"]!["wte.weight"] = 3; return j; }, "wte.weight");
        Add("no-map", "no weight_map", j => { j.Remove("weight_map"); return j; }, "weight_map");
        Add("map-array", "weight_map is an array", j => { j["weight_map"] = new JsonArray(); return j; }, "weight_map");
        Add("wrong-tensor", "a tensor mapped to a shard that lacks it", j => { j["weight_map"]!["h.9.mlp.c_fc.weight"] = "model-00001-of-00001.safetensors"; return j; });
        Add("not-object", "the index is null", _ => null);
        Add("deep-nesting", "weight_map nested 100000 deep", _ => JsonNode.Parse("{\"weight_map\": {\"a\": \"b\"}}")!);
        list.Add(i =>
        {
            var f = _seeds.Gpt2Sharded();
            f["model.safetensors.index.json"] = Bytes.Utf8("{\"weight_map\":" + new string('[', 100_000) + new string(']', 100_000) + "}");
            return Make(i, "shard-index", "deep-nesting", "weight_map nested 100000 deep", FuzzTarget.ModelFolder, f, "model.safetensors.index.json");
        });
        list.Add(i =>
        {
            var f = _seeds.Gpt2Sharded();
            f["model.safetensors.index.json"] = Bytes.Utf8("{\"weight_map\": {" + string.Join(",", Enumerable.Range(0, 200_000).Select(k => $"\"t{k}\": \"s{k}.safetensors\"")) + "}}");
            return Make(i, "shard-index", "many-shards", "200000 distinct shards", FuzzTarget.ModelFolder, f, "model.safetensors.index.json");
        });
        return list;
    }

    List<Func<int, FuzzCase>> PyTorchCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        string markerCommand = $"touch {Marker}";
        void AddPickle(string cls, string description, Func<byte[]> pickle, byte[]? storage = null, string? mention = null) => list.Add(i =>
        {
            var f = _seeds.PyTorch;
            f["pytorch_model.bin"] = Bytes.Zip([("archive/data.pkl", pickle()), ("archive/data/0", storage ?? new byte[16]), ("archive/version", Bytes.Utf8("3\n"))]);
            return Make(i, "pytorch", cls, description, FuzzTarget.ModelFolder, f, "pytorch_model.bin", mention);
        });
        foreach (var (module, name) in new[] { ("posix", "system"), ("os", "system"), ("builtins", "exec"), ("builtins", "eval"), ("subprocess", "Popen"), ("__builtin__", "eval"), ("nt", "system"), ("torch", "load") })
            AddPickle("code-execution", $"{module}.{name}('{markerCommand}')", () => new PickleWriter().Proto().Global(module, name).Mark().Str(markerCommand).Tuple().Reduce().Stop().ToArray(), mention: $"{module}.{name}");
        AddPickle("code-execution", "STACK_GLOBAL os.system", () => new PickleWriter().Proto().Str("os").Str("system").Op(0x93).Mark().Str(markerCommand).Tuple().Reduce().Stop().ToArray(), mention: "os.system");
        AddPickle("code-execution", "INST os system", () => new PickleWriter().Proto().Mark().Str(markerCommand).Op(0x69).Raw(Bytes.Utf8("os\nsystem\n")).Stop().ToArray(), mention: "os.system");
        AddPickle("dup-bomb", "30 million DUPs", () => [.. new PickleWriter().Proto().Op(0x4E).ToArray(), .. Enumerable.Repeat((byte)0x32, 30_000_000), 0x2E]);
        AddPickle("mark-bomb", "10 million MARKs", () => [.. new PickleWriter().Proto().ToArray(), .. Enumerable.Repeat((byte)0x28, 10_000_000), 0x4E, 0x2E]);
        AddPickle("deep-nesting", "a tuple nested 5 million deep", () => [.. new PickleWriter().Proto().Op(0x4E).ToArray(), .. Enumerable.Repeat((byte)0x85, 5_000_000), 0x2E]);
        AddPickle("deep-nesting", "a list nested 3 million deep via APPEND", () =>
        {
            var body = new List<byte> { 0x80, 2, 0x5D };
            for (int k = 0; k < 1_000_000; k++) { body.Add(0x5D); }
            for (int k = 0; k < 1_000_000; k++) { body.Add(0x61); }
            body.Add(0x2E);
            return [.. body];
        });
        AddPickle("memo", "LONG_BINGET of entry 4294967295", () => new PickleWriter().Proto().Op(0x6A).Raw(BitConverter.GetBytes(uint.MaxValue)).Stop().ToArray());
        AddPickle("memo", "LONG_BINPUT 10^7 times at distinct indices", () =>
        {
            var s = new MemoryStream();
            s.Write([0x80, 2, 0x4E]);
            for (uint k = 0; k < 11_000_000; k++) { s.WriteByte(0x72); s.Write(BitConverter.GetBytes(k)); }
            s.WriteByte(0x2E);
            return s.ToArray();
        });
        foreach (var (op, name) in new (byte, string)[] { (0x58, "BINUNICODE"), (0x42, "BINBYTES"), (0x54, "BINSTRING"), (0x8B, "LONG4") })
            AddPickle("huge-length", $"{name} of 2^32-1 bytes", () => new PickleWriter().Proto().Op(op).Raw(BitConverter.GetBytes(uint.MaxValue)).Stop().ToArray());
        AddPickle("huge-length", "BINUNICODE8 of 2^63-1 bytes", () => new PickleWriter().Proto().Op(0x8D).Raw(BitConverter.GetBytes(long.MaxValue)).Stop().ToArray());
        AddPickle("huge-length", "FRAME of 2^63-1 bytes", () => new PickleWriter().Proto().Op(0x95).Raw(BitConverter.GetBytes(long.MaxValue)).Op(0x4E).Stop().ToArray());
        AddPickle("opcode", "unknown opcode 0xFF", () => new PickleWriter().Proto().Op(0xFF).Stop().ToArray());
        AddPickle("opcode", "NEWOBJ", () => new PickleWriter().Proto().Global("collections", "OrderedDict").Op(0x29).Op(0x81).Stop().ToArray());
        AddPickle("truncated", "no STOP", () => new PickleWriter().Proto().Op(0x7D).ToArray());
        AddPickle("not-dict", "the root is a list", () => new PickleWriter().Proto().Op(0x5D).Stop().ToArray());
        AddPickle("stack", "STOP with three values", () => new PickleWriter().Proto().Op(0x4E).Op(0x4E).Op(0x4E).Stop().ToArray());
        AddPickle("stack", "POP from empty", () => new PickleWriter().Proto().Op(0x30).Stop().ToArray());
        // Tensors whose storage and view sizes lie.
        AddPickle("storage-size", "storage numel 2^62 (bytes wrap to 0)", () => PickleWriter.StateDict("wte.weight", "0", 1L << 62, 0, [101, 32], [32, 1]), storage: [], mention: "0");
        AddPickle("storage-size", "storage numel 2^40", () => PickleWriter.StateDict("wte.weight", "0", 1L << 40, 0, [101, 32], [32, 1]), mention: "0");
        AddPickle("storage-size", "storage numel -1", () => PickleWriter.StateDict("wte.weight", "0", -1, 0, [101, 32], [32, 1]));
        AddPickle("stride-wrap", "stride 2^62 wraps the bounds check", () => PickleWriter.StateDict("wte.weight", "0", 4, 0, [5, 2], [1L << 62, 1]), storage: new byte[16]);
        AddPickle("stride-wrap", "size 2^31 x stride 2^33", () => PickleWriter.StateDict("wte.weight", "0", 4, 0, [1L << 31, 2], [1L << 33, 1]), storage: new byte[16]);
        AddPickle("view-past-end", "a view past its storage", () => PickleWriter.StateDict("wte.weight", "0", 4, 3, [4], [1]), storage: new byte[16]);
        AddPickle("huge-dims", "size [2^31, 2^31] stride [0, 0]", () => PickleWriter.StateDict("wte.weight", "0", 4, 0, [1L << 31, 1L << 31], [0, 0]), storage: new byte[16]);
        AddPickle("storage-type", "torch.ComplexFloatStorage", () => PickleWriter.StateDict("wte.weight", "0", 4, 0, [4], [1], "ComplexFloatStorage"), storage: new byte[16], mention: "ComplexFloatStorage");
        AddPickle("missing-storage", "storage key with no entry", () => PickleWriter.StateDict("wte.weight", "7", 4, 0, [4], [1]), storage: new byte[16]);
        // Archives that lie.
        void AddZip(string cls, string description, Func<byte[]> zip) => list.Add(i => { var f = _seeds.PyTorch; f["pytorch_model.bin"] = zip(); return Make(i, "pytorch", cls, description, FuzzTarget.ModelFolder, f, "pytorch_model.bin"); });
        AddZip("zip", "not a zip (PK then garbage)", () => [(byte)'P', (byte)'K', 3, 4, .. new byte[100]]);
        AddZip("zip", "a zip without data.pkl", () => Bytes.Zip([("archive/version", Bytes.Utf8("3\n"))]));
        AddZip("zip-bomb", "data.pkl deflated from 300 MB of zeros", () => Bytes.Zip([("archive/data.pkl", new byte[300 << 20]), ("archive/version", Bytes.Utf8("3\n"))], System.IO.Compression.CompressionLevel.SmallestSize));
        AddZip("zip-bomb", "a storage deflated from 200 MB", () =>
        {
            var f = Bytes.Unzip(_seeds.PyTorch["pytorch_model.bin"]);
            var pkl = f.First(e => e.Name.EndsWith("data.pkl")).Data;
            return Bytes.Zip([.. f.Where(e => !e.Name.Contains("/data/0")), (f.First(e => e.Name.Contains("/data/0")).Name, new byte[200 << 20])], System.IO.Compression.CompressionLevel.SmallestSize);
        });
        AddZip("zip-entry-size", "a storage entry's declared size patched to 2^31", () => PatchZipSizes(_seeds.PyTorch["pytorch_model.bin"], 0x7FFFFFF0u));
        AddZip("zip-entry-size", "entry sizes patched to 0xFFFFFFFF (zip64 marker)", () => PatchZipSizes(_seeds.PyTorch["pytorch_model.bin"], 0xFFFFFFFFu));
        AddZip("traversal", "entries named ../../evil", () => Bytes.Zip([.. Bytes.Unzip(_seeds.PyTorch["pytorch_model.bin"]).Select(e => ("../../" + e.Name, e.Data))]));
        return list;
    }

    /// <summary>Rewrites the uncompressed-size field of every central-directory record.</summary>
    static byte[] PatchZipSizes(byte[] zip, uint size)
    {
        var bytes = (byte[])zip.Clone();
        for (int p = 0; p + 46 <= bytes.Length; p++)
            if (bytes[p] == 0x50 && bytes[p + 1] == 0x4B && bytes[p + 2] == 1 && bytes[p + 3] == 2)
                BitConverter.GetBytes(size).CopyTo(bytes, p + 24);
        return bytes;
    }

    List<Func<int, FuzzCase>> Llama2cCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        string[] fields = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        int[] values = [0, -1, int.MaxValue, int.MinValue, 1 << 30, 3, 65536];
        for (int f = 0; f < 7; f++)
            foreach (int v in values)
            {
                int field = f, value = v;
                list.Add(i =>
                {
                    var data = (byte[])_seeds.Llama2cModel.Clone();
                    BitConverter.GetBytes(value).CopyTo(data, field * 4);
                    return Make(i, "llama2c", "header-" + fields[field], $"{fields[field]} = {value}", FuzzTarget.Llama2c, new() { ["model.bin"] = data }, "model.bin", fields[field]);
                });
            }
        list.Add(i => Make(i, "llama2c", "overflow", "every header field 2^31-1", FuzzTarget.Llama2c,
            new() { ["model.bin"] = [.. Bytes.Int32s(int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue), .. _seeds.Llama2cModel[28..]] }, "model.bin"));
        list.Add(i => Make(i, "llama2c", "overflow", "dim 65536 n_heads 1 n_layers 2^30", FuzzTarget.Llama2c,
            new() { ["model.bin"] = [.. Bytes.Int32s(65536, 65536, 1 << 30, 1, 1, 32000, 2048), .. _seeds.Llama2cModel[28..]] }, "model.bin"));
        list.Add(i => Make(i, "llama2c", "short", "20 bytes", FuzzTarget.Llama2c, new() { ["model.bin"] = _seeds.Llama2cModel[..20] }, "model.bin"));
        list.Add(i => Make(i, "llama2c", "sniffing", "a safetensors file named model.bin", FuzzTarget.Llama2c, new() { ["model.bin"] = _seeds.Gpt2["model.safetensors"] }, "model.bin"));
        list.Add(i => Make(i, "llama2c", "versioned", "llama2.c v1 magic header", FuzzTarget.Llama2c,
            new() { ["model.bin"] = [.. Bytes.Int32s(0x616b3432, 1), .. _seeds.Llama2cModel] }, "model.bin"));
        return list;
    }

    List<Func<int, FuzzCase>> Llama2cTokenizerCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<byte[]> tokenizer) => list.Add(i => Make(i, "llama2c-tokenizer", cls, description, FuzzTarget.Llama2c,
            new() { ["model.bin"] = _seeds.Llama2cModel, ["tokenizer.bin"] = tokenizer() }, "tokenizer.bin"));
        byte[] Seed() => _seeds.Llama2cTokenizer();
        foreach (int v in new[] { -1, 0, int.MaxValue, 1 << 30 })
            Add("max-token-length", $"max_token_length {v}", () => { var t = Seed(); BitConverter.GetBytes(v).CopyTo(t, 0); return t; });
        foreach (int v in new[] { -1, int.MaxValue, 1 << 28, 1 << 20 })
            Add("piece-length", $"first piece length {v}", () => { var t = Seed(); BitConverter.GetBytes(int.MaxValue).CopyTo(t, 0); BitConverter.GetBytes(v).CopyTo(t, 8); return t; });
        Add("empty", "0 bytes", () => []);
        Add("short", "fewer pieces than vocab_size", () => Seed()[..60]);
        Add("score", "NaN and infinite scores", () => { var t = Seed(); BitConverter.GetBytes(float.NaN).CopyTo(t, 4); BitConverter.GetBytes(float.PositiveInfinity).CopyTo(t, 4 + 4 + 4 + 5); return t; });
        Add("byte-fallback", "byte pieces missing (ids beyond the vocabulary)", () =>
        {
            var pieces = new List<byte[]> { Bytes.Utf8("<unk>"), Bytes.Utf8("<s>"), Bytes.Utf8("</s>") };
            while (pieces.Count < 67) pieces.Add(Bytes.Utf8("z" + pieces.Count));
            var s = new MemoryStream(); var w = new BinaryWriter(s); w.Write(8);
            foreach (var p in pieces) { w.Write(0f); w.Write(p.Length); w.Write(p); }
            return s.ToArray();
        });
        Add("utf8", "pieces of invalid UTF-8", () => { var t = Seed(); for (int k = 30; k < t.Length; k += 7) t[k] = 0xC3; return t; });
        return list;
    }

    List<Func<int, FuzzCase>> BpeCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, string file, Func<byte[]> content) => list.Add(i =>
        {
            var f = _seeds.Gpt2WithVocabMerges();
            f[file] = content();
            return Make(i, "bpe-vocab", cls, description, FuzzTarget.Tokenizer, f, file);
        });
        Add("vocab-ids", "an id of 2^31-1", "vocab.json", () => Bytes.Utf8("{\"a\": 0, \"b\": 2147483647}"));
        Add("vocab-ids", "a negative id", "vocab.json", () => Bytes.Utf8("{\"a\": -5}"));
        Add("vocab-ids", "an id of 1e300", "vocab.json", () => Bytes.Utf8("{\"a\": 1e300}"));
        Add("vocab-ids", "string ids", "vocab.json", () => Bytes.Utf8("{\"a\": \"0\"}"));
        Add("vocab-ids", "duplicate ids", "vocab.json", () => Bytes.Utf8("{\"a\": 0, \"b\": 0}"));
        Add("vocab-ids", "ids beyond the model's d_vocab", "vocab.json", () => Bytes.Utf8("{\"a\": 0, \"b\": 5000}"));
        Add("vocab", "empty object", "vocab.json", () => Bytes.Utf8("{}"));
        Add("vocab", "not JSON", "vocab.json", () => Bytes.Utf8("{\"a\": "));
        Add("vocab", "an array", "vocab.json", () => Bytes.Utf8("[1, 2]"));
        Add("deep-nesting", "nested 100000 deep", "vocab.json", () => Bytes.Utf8(new string('[', 100_000) + new string(']', 100_000)));
        Add("merges", "a merge of unknown tokens", "merges.txt", () => Bytes.Utf8("#version: 0.2\nqq zz\n"));
        Add("merges", "a merge with one part", "merges.txt", () => Bytes.Utf8("#version: 0.2\nh\n"));
        Add("merges", "a merge with three parts", "merges.txt", () => Bytes.Utf8("#version: 0.2\nh e l\n"));
        Add("merges", "binary garbage", "merges.txt", () => [.. Enumerable.Range(0, 4096).Select(k => (byte)(k * 37))]);
        Add("merges", "a 20 MB line", "merges.txt", () => Bytes.Utf8("#version: 0.2\n" + new string('a', 20 << 20) + " b\n"));
        return list;
    }

    List<Func<int, FuzzCase>> TokenizerJsonCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<JsonObject, JsonNode?> edit, string? mention = null) => list.Add(i =>
        {
            var json = _seeds.TokenizerJson();
            var edited = edit(json);
            return Make(i, "tokenizer-json", cls, description, FuzzTarget.Tokenizer, _seeds.Gpt2WithTokenizerJson(edited as JsonObject ?? json) is var f && edited is not JsonObject
                ? Set(f, "tokenizer.json", Bytes.Utf8(edited?.ToJsonString() ?? "null")) : f, "tokenizer.json", mention);
        });
        foreach (var (name, regex) in new[] { ("nested-quantifier", "(a+)+$"), ("alternation", "(a|aa)+$"), ("backreference", "(\\w+\\s?)*$"), ("lookahead", "(?=(a+))+b") })
            list.Add(i =>
            {
                var f = _seeds.Gpt2WithTokenizerJson(_seeds.TokenizerJson(regex));
                return Make(i, "tokenizer-json", "catastrophic-regex", $"Split pattern {regex}", FuzzTarget.Tokenizer, f, "tokenizer.json");
            });
        list.Add(i => Make(i, "tokenizer-json", "invalid-regex", "Split pattern '(['", FuzzTarget.Tokenizer, _seeds.Gpt2WithTokenizerJson(_seeds.TokenizerJson("([")), "tokenizer.json"));
        Add("model-type", "model.type Unigram", j => { j["model"]!["type"] = "Unigram"; return j; }, "model.type");
        Add("model-type", "model.type a number", j => { j["model"]!["type"] = 5; return j; });
        Add("missing", "no model", j => { j.Remove("model"); return j; }, "model");
        Add("vocab", "vocab an array", j => { j["model"]!["vocab"] = new JsonArray(1, 2); return j; });
        Add("vocab-ids", "a vocab id of 2^31-1", j => { j["model"]!["vocab"]!["zz"] = int.MaxValue; return j; });
        Add("vocab-ids", "a negative vocab id", j => { j["model"]!["vocab"]!["zz"] = -3; return j; });
        Add("vocab-ids", "a vocab id of 1e300", j => { j["model"]!["vocab"]!["zz"] = 1e300; return j; });
        Add("merges", "merges of numbers", j => { j["model"]!["merges"] = new JsonArray(1, 2); return j; });
        Add("merges", "merges as pairs of arrays", j => { j["model"]!["merges"] = new JsonArray(new JsonArray("h", "e"), new JsonArray("x")); return j; });
        Add("added-tokens", "an added token with id 2^31-1", j => { j["added_tokens"] = new JsonArray(new JsonObject { ["id"] = int.MaxValue, ["content"] = "<x>", ["special"] = true }); return j; });
        Add("added-tokens", "added_tokens a string", j => { j["added_tokens"] = "x"; return j; });
        Add("normalizer", "an unknown normalizer", j => { j["normalizer"] = new JsonObject { ["type"] = "Lowercase" }; return j; });
        Add("pre-tokenizer", "pre_tokenizer a number", j => { j["pre_tokenizer"] = 3; return j; });
        Add("pre-tokenizer", "a Split without pattern", j => { j["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(new JsonObject { ["type"] = "Split" }, new JsonObject { ["type"] = "ByteLevel" }) }; return j; });
        Add("not-object", "the file is null", _ => null);
        Add("deep-nesting", "nested 100000 deep", _ => JsonNode.Parse("[0]"));
        list.Add(i => Make(i, "tokenizer-json", "deep-nesting", "nested 100000 deep", FuzzTarget.Tokenizer,
            Set(_seeds.Gpt2, "tokenizer.json", Bytes.Utf8("{\"model\":" + new string('[', 100_000) + new string(']', 100_000) + "}")), "tokenizer.json"));
        list.Add(i => Make(i, "tokenizer-json", "not-json", "truncated JSON", FuzzTarget.Tokenizer, Set(_seeds.Gpt2, "tokenizer.json", Bytes.Utf8("{\"model\": {\"type\": \"BPE\"")), "tokenizer.json"));
        return list;
    }

    /// <summary>
    /// tokenizer.json files that only Hugging Face's Rust tokenizers read (Tokenizers.DotNet): what that library panics on
    /// (a panic in a native call ends the process) or fails on at the first encode, each of which it once did.
    /// </summary>
    List<Func<int, FuzzCase>> NativeTokenizerJsonCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Action<JsonObject> edit, string? mention = null) => list.Add(i =>
        {
            var json = Seeds.NativeTokenizerJson();
            edit(json);
            return Make(i, "tokenizer-json-native", cls, description, FuzzTarget.Tokenizer, _seeds.Gpt2WithTokenizerJson(json), "tokenizer.json", mention);
        });
        static JsonObject Split(string regex) => new() { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = regex }, ["behavior"] = "Isolated", ["invert"] = false };
        foreach (var regex in new[] { "(a+)+$", "(a|aa)+$", "(\\w+\\s?)*$", "(?=(a+))+b", "((a*)*)*!" })
            Add("catastrophic-regex", $"Split pattern {regex}", j => j["pre_tokenizer"] = Split(regex), "Regex");
        Add("catastrophic-regex", "Replace normalizer pattern (a+a+)+!", j => j["normalizer"] = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = "(a+a+)+!" }, ["content"] = "b" }, "Regex");
        Add("invalid-regex", "Split pattern '(?<=a'", j => j["pre_tokenizer"] = Split("(?<=a"));
        static JsonObject Precompiled(byte[] map) => new() { ["type"] = "Precompiled", ["precompiled_charsmap"] = Convert.ToBase64String(map) };
        Add("charsmap", "a charsmap whose trie length is 2^31-1", j => j["normalizer"] = Precompiled([0xFF, 0xFF, 0xFF, 0x7F, .. new byte[20]]), "precompiled_charsmap");
        Add("charsmap", "a charsmap trie whose offsets point outside it", j => j["normalizer"] = Precompiled([0x10, 0, 0, 0, .. Enumerable.Repeat((byte)0xFF, 16), (byte)'a', 0]), "precompiled_charsmap");
        Add("charsmap", "a charsmap of 3 bytes", j => j["normalizer"] = Precompiled([1, 2, 3]), "precompiled_charsmap");
        Add("charsmap", "a charsmap that is not base64", j => j["normalizer"] = new JsonObject { ["type"] = "Precompiled", ["precompiled_charsmap"] = "!!not base64!!" }, "precompiled_charsmap");
        Add("charsmap", "a charsmap whose strings are not UTF-8", j => j["normalizer"] = Precompiled([4, 0, 0, 0, 0, 0, 0, 0, 0xC3, 0x28, 0]), "precompiled_charsmap");
        Add("template", "the template adds a special token special_tokens lacks", j => j["post_processor"]!["single"]![0]!["SpecialToken"]!["id"] = "<missing>", "special_tokens");
        Add("template", "a special token's id is 2^31-1", j => j["post_processor"]!["special_tokens"]!["<s>"]!["ids"] = new JsonArray(int.MaxValue), "special_tokens");
        Add("template", "a special token's id is -1", j => j["post_processor"]!["special_tokens"]!["<s>"]!["ids"] = new JsonArray(-1), "special_tokens");
        Add("template", "two ids for one token", j => j["post_processor"]!["special_tokens"]!["<s>"]!["ids"] = new JsonArray(1, 2), "special_tokens");
        Add("template", "special_tokens an array", j => j["post_processor"]!["special_tokens"] = new JsonArray(1));
        Add("lengthening", "20 Replace normalizers that each double every l", j => j["normalizer"] = new JsonObject
        {
            ["type"] = "Sequence",
            ["normalizers"] = new JsonArray([.. Enumerable.Range(0, 20).Select(_ => (JsonNode)new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "l" }, ["content"] = "ll" })]),
        }, "normalizer");
        Add("lengthening", "a Replace of the empty string by 100 characters", j => j["normalizer"] = new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = "" }, ["content"] = new string('x', 100) }, "normalizer");
        Add("unk", "unk_token not in the vocabulary", j => j["model"]!["unk_token"] = "<nope>");
        Add("model", "a WordPiece model without its [UNK]", j => { j["model"] = new JsonObject { ["type"] = "WordPiece", ["unk_token"] = "[UNK]", ["continuing_subword_prefix"] = "##", ["max_input_chars_per_word"] = 100, ["vocab"] = new JsonObject { ["a"] = 0, ["b"] = 1 } }; j["added_tokens"] = new JsonArray(); j["post_processor"] = null; });
        Add("model", "a WordLevel model without its unk token", j => { j["model"] = new JsonObject { ["type"] = "WordLevel", ["vocab"] = new JsonObject { ["a"] = 0 }, ["unk_token"] = "<nope>" }; j["added_tokens"] = new JsonArray(); j["post_processor"] = null; });
        Add("model", "a Unigram model whose unk_id is outside it", j => { j["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = 5, ["vocab"] = new JsonArray(new JsonArray("<unk>", 0.0), new JsonArray("a", -1.0)), ["byte_fallback"] = false }; j["added_tokens"] = new JsonArray(); j["post_processor"] = null; });
        Add("model", "a Unigram model with an empty vocabulary", j => { j["model"] = new JsonObject { ["type"] = "Unigram", ["unk_id"] = null, ["vocab"] = new JsonArray(), ["byte_fallback"] = false }; j["added_tokens"] = new JsonArray(); j["post_processor"] = null; });
        Add("model", "a merge of tokens the vocabulary lacks", j => j["model"]!["merges"] = new JsonArray("zz qq"));
        Add("model", "dropout 1.5", j => j["model"]!["dropout"] = 1.5);
        Add("pre-tokenizer", "a Metaspace with an empty replacement", j => j["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "", ["prepend_scheme"] = "always", ["split"] = true });
        Add("pre-tokenizer", "an unknown pre-tokenizer type", j => j["pre_tokenizer"] = new JsonObject { ["type"] = "Nonsense" });
        Add("decoder", "a Strip decoder removing 10^6 characters", j => j["decoder"] = new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1_000_000, ["stop"] = 1_000_000 });
        Add("decoder", "a CTC decoder", j => j["decoder"] = new JsonObject { ["type"] = "CTC", ["pad_token"] = "<pad>", ["word_delimiter_token"] = "|", ["cleanup"] = true });
        Add("deep-nesting", "Sequence normalizers nested 60 deep", j =>
        {
            JsonNode inner = new JsonObject { ["type"] = "Lowercase" };
            for (int d = 0; d < 60; d++) inner = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray(inner) };
            j["normalizer"] = inner;
        });
        foreach (var (field, set) in new (string, Action<JsonObject, JsonNode?>)[]
        {
            ("model.dropout", (j, v) => j["model"]!["dropout"] = v),
            ("decoder Strip start", (j, v) => j["decoder"]!["decoders"]![2]!["start"] = v),
            ("added_tokens[0].id", (j, v) => j["added_tokens"]![0]!["id"] = v),
        })
            foreach (var (name, value) in HostileNumbers)
                Add("value-" + name, $"{field} = {value?.ToJsonString() ?? "null"}", j => set(j, value?.DeepClone()));
        return list;
    }

    static Dictionary<string, byte[]> Set(Dictionary<string, byte[]> files, string name, byte[] data) { files[name] = data; return files; }

    List<Func<int, FuzzCase>> WordPieceCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, byte[] vocab) => list.Add(i => Make(i, "wordpiece", cls, description, FuzzTarget.WordPiece, new() { ["vocab.txt"] = vocab }, "vocab.txt"));
        Add("empty", "0 bytes", []);
        Add("no-unk", "no [UNK]", Bytes.Utf8("the\ncat\n"));
        Add("duplicates", "every token twice", Bytes.Utf8("[UNK]\n[UNK]\nthe\nthe\n"));
        Add("huge-line", "a 30 MB token", Bytes.Utf8("[UNK]\n" + new string('x', 30 << 20) + "\n"));
        Add("binary", "binary garbage", [.. Enumerable.Range(0, 5000).Select(k => (byte)(k * 131))]);
        Add("many", "2 million tokens", Bytes.Utf8("[UNK]\n" + string.Join("\n", Enumerable.Range(0, 2_000_000).Select(k => "t" + k))));
        Add("crlf", "Windows line ends and a BOM", Bytes.Utf8("\uFEFF[PAD]\r\n[UNK]\r\nthe\r\n"));
        return list;
    }

    List<Func<int, FuzzCase>> BertCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        foreach (string field in new[] { "num_hidden_layers", "num_attention_heads", "hidden_size", "intermediate_size", "vocab_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps" })
            foreach (var (name, value) in HostileNumbers.Where(h => h.Name is "zero" or "negative" or "int32-max" or "1e300" or "string" or "2^62"))
                list.Add(i =>
                {
                    var f = _seeds.Bert;
                    var json = JsonNode.Parse(f["config.json"])!.AsObject();
                    json[field] = value?.DeepClone();
                    f["config.json"] = Bytes.Utf8(json.ToJsonString());
                    return Make(i, "bert", "value-" + name, $"bert config.json {field} = {value?.ToJsonString() ?? "null"}", FuzzTarget.EncoderFolder, f, "config.json", field);
                });
        return list;
    }

    List<Func<int, FuzzCase>> SaeCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        foreach (string field in new[] { "d_in", "d_sae", "architecture", "dtype", "normalize_activations", "apply_b_dec_to_input" })
            foreach (var (name, value) in HostileNumbers)
                list.Add(i =>
                {
                    var f = SaeFolder();
                    var json = JsonNode.Parse(f["sae/cfg.json"])!.AsObject();
                    json[field] = value?.DeepClone();
                    f["sae/cfg.json"] = Bytes.Utf8(json.ToJsonString());
                    return Make(i, "sae", "value-" + name, $"cfg.json {field} = {value?.ToJsonString() ?? "null"}", FuzzTarget.Sae, f, "sae/cfg.json", field);
                });
        foreach (var (cls, text) in new (string, string)[]
        {
            ("architecture", "{\"architecture\": \"quantum\", \"d_in\": 16, \"d_sae\": 40}"), ("empty", ""), ("not-json", "{\"d_in\": "), ("array", "[]"),
            ("deep-nesting", new string('[', 100_000) + new string(']', 100_000)), ("huge", "{\"architecture\": \"standard\", \"d_in\": 2147483647, \"d_sae\": 2147483647}"),
        })
            list.Add(i => { var f = SaeFolder(); f["sae/cfg.json"] = Bytes.Utf8(text); return Make(i, "sae", cls, $"cfg.json {cls}", FuzzTarget.Sae, f, "sae/cfg.json"); });
        list.Add(i => { var f = SaeFolder(); f.Remove("sae/sae_weights.safetensors"); return Make(i, "sae", "missing", "no sae_weights.safetensors", FuzzTarget.Sae, f, "sae"); });
        list.Add(i => { var f = SaeFolder(); f["sae/sae_weights.safetensors"] = _seeds.Gpt2["model.safetensors"]; return Make(i, "sae", "wrong-weights", "a GPT-2's weights as the SAE's", FuzzTarget.Sae, f, "sae/sae_weights.safetensors"); });
        list.Add(i =>
        {
            var f = SaeFolder();
            var (h, d) = Bytes.SplitSafeTensors(f["sae/sae_weights.safetensors"]);
            h["W_enc"]!["shape"] = new JsonArray(40, 16);
            f["sae/sae_weights.safetensors"] = Bytes.SafeTensors(h.ToJsonString(), d);
            return Make(i, "sae", "shape-mismatch", "W_enc stored transposed", FuzzTarget.Sae, f, "sae/sae_weights.safetensors", "W_enc");
        });
        return list;
    }

    List<Func<int, FuzzCase>> NpyCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, byte[] npy, string? mention = null) => list.Add(i => Make(i, "npy", cls, description, FuzzTarget.Npy, new() { ["x.npy"] = npy }, "x.npy", mention));
        const string F = "{'descr': '<f4', 'fortran_order': False, 'shape': ";
        foreach (var (name, shape) in new (string, string)[]
        {
            ("huge-dims", "(2147483648, 2147483648)"), ("overflow", "(4294967296, 4294967296, 4294967296)"), ("negative", "(-1, 16)"), ("1e300", "(1e300, 16)"),
            ("text", "('a', 16)"), ("many-dims", "(" + string.Join(", ", Enumerable.Repeat("1", 1000)) + ")"), ("int32-max", "(2147483647, 16)"), ("zero", "(0, 16)"),
        })
            Add("shape-" + name, $"shape {shape[..Math.Min(40, shape.Length)]}", Bytes.Npy(F + shape + ", }", new byte[64]), "shape");
        Add("descr", "descr '>f4' (big-endian)", Bytes.Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 16), }", new byte[128]), "descr");
        Add("descr", "descr 'O' (Python objects)", Bytes.Npy("{'descr': '|O', 'fortran_order': False, 'shape': (2, 16), }", new byte[128]), "descr");
        Add("fortran", "fortran_order True", Bytes.Npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 16), }", new byte[128]), "fortran");
        Add("header", "header with no shape", Bytes.Npy("{'descr': '<f4', 'fortran_order': False, }", new byte[128]));
        Add("header", "header 'eval' payload", Bytes.Npy("__import__('os').system('touch " + Marker + "')", new byte[128]));
        Add("version", "format version 9", [.. Seeds_Activations()[..6], 9, 0, .. Seeds_Activations()[8..]]);
        Add("header-length", "v2 header length 2^32-1", [.. Seeds_Activations()[..6], 2, 0, 0xFF, 0xFF, 0xFF, 0xFF, .. Seeds_Activations()[10..]]);
        Add("truncated", "header length past the end", [.. Seeds_Activations()[..8], 0xFF, 0xFF]);
        Add("empty", "0 bytes", []);
        Add("magic", "wrong magic", Bytes.Utf8("NOTNUMPY" + new string(' ', 100)));
        Add("width", "right file, wrong d_in [3, 5]", Bytes.Npy(F + "(3, 5), }", new byte[60]));
        return list;
    }

    byte[] Seeds_Activations() => _seeds.Activations;

    List<Func<int, FuzzCase>> NpzCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<byte[]> npz) => list.Add(i => Make(i, "npz", cls, description, FuzzTarget.Npz, new() { ["params.npz"] = npz() }, "params.npz"));
        List<(string Name, byte[] Data)> Entries() => Bytes.Unzip(_seeds.GemmaScope);
        Add("entry-shape", "W_enc with shape (2^31, 2^31)", () => Bytes.Zip([.. Entries().Select(e => e.Name == "W_enc.npy" ? (e.Name, Bytes.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648), }", new byte[16])) : e)]));
        Add("entry-missing", "no W_enc", () => Bytes.Zip([.. Entries().Where(e => e.Name != "W_enc.npy")]));
        Add("entry-garbage", "W_dec is not a .npy", () => Bytes.Zip([.. Entries().Select(e => e.Name == "W_dec.npy" ? (e.Name, Bytes.Utf8("garbage")) : e)]));
        Add("entry-shape", "W_enc transposed", () => Bytes.Zip([.. Entries().Select(e => e.Name == "W_enc.npy" ? (e.Name, Bytes.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (40, 16), }", new byte[40 * 16 * 4])) : e)]));
        Add("zip-bomb", "an entry deflated from 400 MB", () => Bytes.Zip([.. Entries(), ("bomb.npy", new byte[400 << 20])], System.IO.Compression.CompressionLevel.SmallestSize));
        Add("zip-entry-size", "entry sizes patched to 2^31", () => PatchZipSizes(_seeds.GemmaScope, 0x7FFFFFF0u));
        Add("not-zip", "not a zip", () => Bytes.Utf8("PK not really"));
        Add("empty", "0 bytes", () => []);
        Add("traversal", "entries named ../../x.npy", () => Bytes.Zip([.. Entries().Select(e => ("../../" + e.Name, e.Data))]));
        return list;
    }

    List<Func<int, FuzzCase>> HubCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        string repo = "hub/models--fuzz--model";
        void Add(string cls, string description, Func<Dictionary<string, byte[]>> files, string main) => list.Add(i => Make(i, "hub-cache", cls, description, FuzzTarget.HubCache, files(), main));
        foreach (var (name, commit) in new[] { ("traversal", "../../../../../../tmp"), ("absolute", "/etc"), ("empty", ""), ("unknown", "ffffffffffffffffffffffffffffffffffffffff"), ("newlines", "a\nb\nc"), ("huge", new string('0', 5 << 20)) })
            Add("ref-" + name, $"refs/main = {commit[..Math.Min(30, commit.Length)]}", () => _seeds.HubCache(commit: commit), $"{repo}/refs/main");
        Add("snapshot-config", "the snapshot's config.json is garbage", () => Set(_seeds.HubCache(), $"{repo}/snapshots/{Seeds.HubCommit}/config.json", Bytes.Utf8("{{{")), $"{repo}/snapshots/{Seeds.HubCommit}/config.json");
        Add("snapshot-weights", "the snapshot's weights are truncated", () =>
        {
            var f = _seeds.HubCache();
            string w = $"{repo}/snapshots/{Seeds.HubCommit}/model.safetensors";
            f[w] = f[w][..100];
            return f;
        }, $"{repo}/snapshots/{Seeds.HubCommit}/model.safetensors");
        Add("snapshot-missing", "the snapshot lacks its weights", () => { var f = _seeds.HubCache(); f.Remove($"{repo}/snapshots/{Seeds.HubCommit}/model.safetensors"); return f; }, $"{repo}/snapshots/{Seeds.HubCommit}");
        Add("incomplete", "only a .incomplete blob", () => new() { [$"{repo}/blobs/abc.incomplete"] = new byte[10], [$"{repo}/refs/main"] = Bytes.Utf8(Seeds.HubCommit) }, $"{repo}/refs/main");
        return list;
    }

    List<Func<int, FuzzCase>> OnnxCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<byte[]> onnx, string? mention = null) => list.Add(i => Make(i, "onnx", cls, description, FuzzTarget.Onnx, new() { ["model.onnx"] = onnx() }, "model.onnx", mention));
        Add("dims", "dims [2^31, 2^31]", () => Seeds.Onnx([1L << 31, 1L << 31]), "W");
        Add("dims", "dims [2^62, 4] (bytes overflow)", () => Seeds.Onnx([1L << 62, 4]), "W");
        Add("dims", "negative dims (varint 2^64-1)", () => Seeds.Onnx([-1, 2]), "W");
        Add("dims", "10000 dims", () => Seeds.Onnx([.. Enumerable.Repeat(1L, 10000)]));
        Add("raw-data", "raw_data shorter than dims", () => Seeds.Onnx([3, 2], new byte[7]), "W");
        Add("data-type", "data_type 99", () => Seeds.Onnx(dataType: 99), "W");
        Add("varint", "an 11-byte varint", () => [0x08, .. Enumerable.Repeat((byte)0xFF, 11), 0x01]);
        Add("length", "a field length of 2^63", () => [0x3A, .. Bytes.Varint(1UL << 63)]);
        Add("length", "a field length past the end", () => [0x3A, .. Bytes.Varint(1000), 1, 2, 3]);
        Add("wire-type", "wire type 7", () => [0x3F, 0, 0]);
        Add("deep-nesting", "messages nested 100000 deep", () =>
        {
            byte[] inner = [];
            for (int k = 0; k < 2000; k++) inner = Bytes.PbBytes(7, inner);
            return inner;
        });
        Add("duplicate", "two initializers named W", () => Bytes.OnnxModel([Bytes.OnnxTensor("W", [1], 1, new byte[4]), Bytes.OnnxTensor("W", [1], 1, new byte[4])], []), "W");
        Add("external", "external data", () => Bytes.OnnxModel([[.. Bytes.OnnxTensor("W", [1], 1, new byte[4]), .. Bytes.PbVarint(14, 1)]], []), "W");
        Add("empty", "0 bytes", () => []);
        return list;
    }

    List<Func<int, FuzzCase>> ModelFileCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        list.Add(i => Make(i, "model-file", "sniffing", "--model FOLDER/model.safetensors (valid)", FuzzTarget.ModelFile, _seeds.Gpt2, "model.safetensors"));
        list.Add(i => Make(i, "model-file", "sniffing", "--model FOLDER/model.safetensors, 8-byte header length with a PK-like start", FuzzTarget.ModelFile,
            Set(_seeds.Gpt2, "model.safetensors", [(byte)'P', (byte)'K', .. _seeds.Gpt2["model.safetensors"][2..]]), "model.safetensors"));
        list.Add(i => Make(i, "model-file", "sniffing", "--model FOLDER/model.safetensors, 3 bytes", FuzzTarget.ModelFile, Set(_seeds.Gpt2, "model.safetensors", [1, 2, 3]), "model.safetensors"));
        list.Add(i => Make(i, "model-file", "sniffing", "--model FOLDER/model.safetensors without config.json", FuzzTarget.ModelFile, Without(_seeds.Gpt2, "config.json"), "model.safetensors"));
        return list;
    }

    static Dictionary<string, byte[]> Without(Dictionary<string, byte[]> files, string name) { files.Remove(name); return files; }

    public static string Summary(FuzzCase c) => $"{c.Id}: {c.Description}";
    public static string Describe(byte[] data) => data.Length <= 64 ? Encoding.UTF8.GetString(data) : $"{data.Length} bytes";

    // ---------------------------------------------------------------- formats added after the first corpus

    /// <summary>A safetensors file with one tensor's header entry changed (its bytes are left as they are).</summary>
    static byte[] WithTensorHeader(byte[] file, string tensor, Action<JsonObject> change)
    {
        var (h, d) = Bytes.SplitSafeTensors(file);
        change(h[tensor]!.AsObject());
        return Bytes.SafeTensors(h.ToJsonString(), d);
    }

    List<Func<int, FuzzCase>> TranscoderCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        const string Config = "tc/config.yaml", Layer0 = "tc/layer_0.safetensors";
        void Add(string cls, string description, Func<Dictionary<string, byte[]>, Dictionary<string, byte[]>> make, string main, string? mention = null, bool crossLayer = false) =>
            list.Add(i => Make(i, "transcoders", cls, description, FuzzTarget.Transcoders, make(crossLayer ? _seeds.CrossLayerTranscoders() : _seeds.Transcoders()), main, mention));
        string yaml = Seeds.Text(_seeds.Transcoders()[Config]);
        string With(string field, string value) => string.Join("\n", yaml.Split('\n').Select(l => l.StartsWith(field + ":", StringComparison.Ordinal) ? $"{field}: {value}" : l));
        foreach (var (field, value) in new (string, string)[]
        {
            ("model_kind", "quantum_transcoder"), ("model_kind", ""), ("feature_input_hook", "blocks.0.hook_nowhere"), ("feature_input_hook", "\"\""),
            ("feature_output_hook", "hook_resid_pre; rm -rf /"), ("activation", "gelu"), ("activation", "[relu, topk]"),
        })
            Add("config-" + field, $"config.yaml {field}: {value}", f => { f[Config] = Bytes.Utf8(With(field, value)); return f; }, Config, field);
        foreach (var (name, value) in HostileNumbers)
            Add("k-" + name, $"config.yaml activation topk, k = {value?.ToJsonString() ?? "null"}", f =>
            {
                f[Config] = Bytes.Utf8(With("activation", "topk") + $"\nk: {value?.ToJsonString() ?? "null"}\n");
                return f;
            }, Config, "k");
        foreach (var (cls, text) in new (string, string)[]
        {
            ("config-empty", ""), ("config-binary", "\0\u0001\u0002\u00ff"), ("config-tabs", "model_kind:\ttranscoder_set\n\tfeature_input_hook: x"),
            ("config-huge-line", "model_kind: " + new string('a', 5_000_000)), ("config-anchors", "a: &a [*a, *a]\nmodel_kind: *a"),
            ("transcoders-escape", yaml + "\ntranscoders:\n  - ../../../../etc/passwd\n  - layer_1.safetensors\n"),
            ("transcoders-absolute", yaml + "\ntranscoders:\n  - /proc/self/mem\n"),
            ("transcoders-hf", yaml + "\ntranscoders:\n  - hf://mntss/gemma-scope-transcoders/layer_0.safetensors\n"),
            ("transcoders-empty", yaml + "\ntranscoders: []\n"),
        })
            Add(cls, $"config.yaml: {cls}", f => { f[Config] = Bytes.Utf8(text); return f; }, Config);
        Add("missing-layer", "layer_1.safetensors deleted", f => { f.Remove("tc/layer_1.safetensors"); return f; }, "tc/layer_1.safetensors");
        Add("extra-layer", "a third layer for a 2-layer model", f => { f["tc/layer_2.safetensors"] = f["tc/layer_1.safetensors"]; return f; }, "tc");
        Add("gpt2-weights", "a GPT-2's weights as layer 0", f => { f[Layer0] = _seeds.Gpt2["model.safetensors"]; return f; }, Layer0);
        foreach (var (tensor, shape) in new (string, long[])[]
        {
            ("W_enc", [32, 16]), ("W_enc", [16, 31]), ("W_dec", [16, 33]), ("b_enc", [15]), ("b_dec", [31]),
            ("W_skip", [32, 31]), ("activation_function.threshold", [17]), ("W_enc", [2147483648, 2147483648]), ("W_enc", [-1, 32]), ("W_enc", []),
        })
            Add("shape-" + tensor, $"{tensor} declared {ShapeTextOf(shape)}", f => { f[Layer0] = WithTensorHeader(f[Layer0], tensor, t => t["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)])); return f; }, Layer0, tensor);
        foreach (var dtype in new[] { "I64", "BOOL", "F8_E4M3", "Q4" })
            Add("dtype-" + dtype, $"W_enc dtype {dtype}", f => { f[Layer0] = WithTensorHeader(f[Layer0], "W_enc", t => t["dtype"] = dtype); return f; }, Layer0, "W_enc");
        Add("layers-disagree", "layer 1 from a set with another d_transcoder", f =>
        {
            using var other = Seeds.MakeTranscoders(false);
            var bytes = f["tc/layer_1.safetensors"];
            f["tc/layer_1.safetensors"] = WithTensorHeader(WithTensorHeader(bytes, "b_enc", t => t["shape"] = new JsonArray(8)), "W_enc", t => t["shape"] = new JsonArray(8, 64));
            return f;
        }, "tc/layer_1.safetensors");
        // The cross-layer layout: W_enc_{i} / W_dec_{i}.safetensors.
        Add("clt-seed-dec-shape", "CLT W_dec_0 declared [16, 1, 32] (a per-layer decoder)", f =>
        {
            f["tc/W_dec_0.safetensors"] = WithTensorHeader(f["tc/W_dec_0.safetensors"], "W_dec_0", t => t["shape"] = new JsonArray(16, 1, 32));
            return f;
        }, "tc/W_dec_0.safetensors", "W_dec_0", crossLayer: true);
        Add("clt-missing-dec", "CLT W_dec_1.safetensors deleted", f => { f.Remove("tc/W_dec_1.safetensors"); return f; }, "tc/W_dec_1.safetensors", crossLayer: true);
        Add("clt-enc-shape", "CLT W_enc_1 declared [16, 33]", f =>
        {
            f["tc/W_enc_1.safetensors"] = WithTensorHeader(f["tc/W_enc_1.safetensors"], "W_enc_1", t => t["shape"] = new JsonArray(16, 33));
            return f;
        }, "tc/W_enc_1.safetensors", "W_enc_1", crossLayer: true);
        return list;
    }

    static string ShapeTextOf(long[] shape) => "[" + string.Join(", ", shape) + "]";

    List<Func<int, FuzzCase>> CrossCoderCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        const string Config = "cc/config.json", Weights = "cc/model.safetensors";
        void Add(string cls, string description, Func<Dictionary<string, byte[]>, Dictionary<string, byte[]>> make, string main, string? mention = null, string fixture = "crosscoder/batchtopk") =>
            list.Add(i => Make(i, "crosscoder", cls, description, FuzzTarget.CrossCoder, make(_seeds.CrossCoder(fixture)), main, mention));
        foreach (string field in new[] { "activation_dim", "dict_size", "num_layers", "k", "code_normalization", "target_rms" })
            foreach (var (name, value) in HostileNumbers)
                Add("value-" + name, $"config.json {field} = {value?.ToJsonString() ?? "null"}", f =>
                {
                    var json = JsonNode.Parse(f[Config])!.AsObject();
                    json[field] = value?.DeepClone();
                    f[Config] = Bytes.Utf8(json.ToJsonString());
                    return f;
                }, Config, field);
        foreach (var (cls, text) in new (string, string)[]
        {
            ("empty", ""), ("not-json", "{\"activation_dim\": "), ("array", "[]"), ("deep-nesting", new string('[', 100_000) + new string(']', 100_000)),
            ("huge", "{\"activation_dim\": 2147483647, \"dict_size\": 2147483647, \"num_layers\": 2, \"k\": 7, \"code_normalization\": \"CROSSCODER\"}"),
            ("normalization", "{\"activation_dim\": 8, \"dict_size\": 32, \"num_layers\": 2, \"k\": 7, \"code_normalization\": \"QUANTUM\"}"),
        })
            Add(cls, $"config.json {cls}", f => { f[Config] = Bytes.Utf8(text); return f; }, Config);
        Add("missing-weights", "no model.safetensors", f => { f.Remove(Weights); return f; }, "cc");
        Add("gpt2-weights", "a GPT-2's weights as the crosscoder's", f => { f[Weights] = _seeds.Gpt2["model.safetensors"]; return f; }, Weights);
        foreach (var (tensor, shape) in new (string, long[])[]
        {
            ("encoder.weight", [2, 8, 31]), ("encoder.weight", [3, 8, 32]), ("decoder.weight", [2, 32, 7]), ("encoder.bias", [33]), ("decoder.bias", [2, 9]),
            ("encoder.weight", [2147483648, 2147483648, 2]), ("encoder.weight", [-2, 8, 32]), ("decoder.weight", [32, 2, 8]),
        })
            Add("shape-" + tensor, $"{tensor} declared {ShapeTextOf(shape)}", f => { f[Weights] = WithTensorHeader(f[Weights], tensor, t => t["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)])); return f; }, Weights, tensor);
        Add("dtype", "encoder.weight dtype I64", f => { f[Weights] = WithTensorHeader(f[Weights], "encoder.weight", t => t["dtype"] = "I64"); return f; }, Weights, "encoder.weight");
        Add("input-shape", "X.npy of another width", f => { f["cc/X.npy"] = Bytes.Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 9), }", new byte[4 * 2 * 9 * 4]); return f; }, "cc/X.npy");
        // Kissane's layout: cfg.json + cc_weights.pt (a pickle, read without running anything).
        foreach (string field in new[] { "d_in", "dict_size" })
            foreach (var (name, value) in HostileNumbers.Take(6))
                Add("kissane-" + name, $"Kissane cfg.json {field} = {value?.ToJsonString() ?? "null"}", f =>
                {
                    var json = JsonNode.Parse(f["cc/cfg.json"])!.AsObject();
                    json[field] = value?.DeepClone();
                    f["cc/cfg.json"] = Bytes.Utf8(json.ToJsonString());
                    return f;
                }, "cc/cfg.json", field, "crosscoder/kissane");
        return list;
    }

    List<Func<int, FuzzCase>> GraphJsonCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        void Add(string cls, string description, Func<JsonObject, JsonNode?> change, string? mention = null) => list.Add(i =>
        {
            var f = _seeds.GraphJson();
            var json = JsonNode.Parse(f["graph.json"])!.AsObject();
            var changed = change(json);
            f["graph.json"] = Bytes.Utf8(changed?.ToJsonString() ?? "null");
            return Make(i, "graph-json", cls, description, FuzzTarget.GraphJson, f, "graph.json", mention);
        });
        foreach (var field in new[] { "metadata", "qParams", "nodes", "links" })
        {
            Add("missing-" + field, $"no {field}", j => { j.Remove(field); return j; });
            foreach (var (name, value) in HostileNumbers.Where(h => h.Name is "negative" or "1e300" or "string" or "null" or "array"))
                Add("value-" + name, $"{field} = {value?.ToJsonString() ?? "null"}", j => { j[field] = value?.DeepClone(); return j; });
        }
        Add("node-fields", "every node's fields replaced by numbers", j => { foreach (var n in j["nodes"]!.AsArray()) foreach (var key in n!.AsObject().Select(kv => kv.Key).ToList()) n[key] = 1e300; return j; });
        Add("link-dangling", "links to nodes that do not exist", j => { foreach (var l in j["links"]!.AsArray()) { l!["source"] = "nowhere"; l["target"] = "-1"; } return j; });
        Add("link-weights", "link weights NaN-like strings", j => { foreach (var l in j["links"]!.AsArray()) l!["weight"] = "NaN"; return j; });
        Add("prompt-tokens", "metadata.prompt_tokens is an object", j => { j["metadata"]!["prompt_tokens"] = new JsonObject { ["a"] = 1 }; return j; });
        Add("many-nodes", "the node list repeated 2,000 times", j => { var nodes = j["nodes"]!.AsArray(); var copy = nodes.ToJsonString(); for (int k = 0; k < 2000; k++) foreach (var n in JsonNode.Parse(copy)!.AsArray()) nodes.Add(n!.DeepClone()); return j; });
        foreach (var (cls, text) in new (string, string)[]
        {
            ("empty", ""), ("not-json", "{\"metadata\": "), ("array", "[]"), ("deep-nesting", new string('[', 100_000) + new string(']', 100_000)),
            ("bom-garbage", "\uFEFF\u0000{}"), ("number", "1e999999"),
        })
            list.Add(i => Make(i, "graph-json", cls, $"graph.json {cls}", FuzzTarget.GraphJson, new() { ["graph.json"] = Bytes.Utf8(text) }, "graph.json"));
        return list;
    }

    const string Step2 = "run.checkpoints/step-000002/";

    /// <summary>The checkpoint files with one changed, and the manifest rewritten to match (so the loader, not the hash, meets the change).</summary>
    static Dictionary<string, byte[]> Rehashed(Dictionary<string, byte[]> files)
    {
        var folder = files.Where(kv => kv.Key.StartsWith(Step2, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[Step2.Length..], kv => kv.Value);
        files[Step2 + CheckpointManifest.FileName] = Seeds.ManifestFor(folder);
        return files;
    }

    List<Func<int, FuzzCase>> CheckpointCases()
    {
        var list = new List<Func<int, FuzzCase>>();
        const string Manifest = Step2 + "manifest.json", Config = Step2 + "config.json", Weights = Step2 + "model.safetensors";
        void Add(string cls, string description, Func<Dictionary<string, byte[]>, Dictionary<string, byte[]>> make, string main, string? mention = null) =>
            list.Add(i => Make(i, "checkpoint", cls, description, FuzzTarget.Checkpoint, make(_seeds.Checkpoints()), main, mention));
        foreach (var (cls, text) in new (string, string)[]
        {
            ("manifest-empty", ""), ("manifest-not-json", "{\"format\": "), ("manifest-array", "[]"), ("manifest-format", "{\"format\": \"sharplens-checkpoint/99\", \"files\": {}}"),
            ("manifest-no-files", "{\"format\": \"sharplens-checkpoint/1\", \"files\": {}}"),
            ("manifest-deep", new string('[', 100_000) + new string(']', 100_000)),
        })
            Add(cls, $"manifest.json: {cls}", f => { f[Manifest] = Bytes.Utf8(text); return f; }, Manifest);
        void Entry(string cls, string description, Action<JsonObject> change) => Add(cls, description, f =>
        {
            var json = JsonNode.Parse(f[Manifest])!.AsObject();
            change(json);
            f[Manifest] = Bytes.Utf8(json.ToJsonString());
            return f;
        }, Manifest);
        JsonObject FilesOf(JsonObject manifest) => manifest.First(kv => kv.Value is JsonObject o && o.Count > 2).Value!.AsObject();
        Entry("entry-escape", "the manifest lists ../../run/config.json", j => { var files = FilesOf(j); files["../../run/config.json"] = files["config.json"]!.DeepClone(); });
        Entry("entry-absolute", "the manifest lists /etc/passwd", j => { var files = FilesOf(j); files["/etc/passwd"] = files["config.json"]!.DeepClone(); });
        Entry("entry-missing", "the manifest lists a file that is not there", j => { var files = FilesOf(j); files["gone.safetensors"] = files["config.json"]!.DeepClone(); });
        foreach (var (name, value) in HostileNumbers)
            Entry("entry-size-" + name, $"config.json's size = {value?.ToJsonString() ?? "null"}", j =>
            {
                var entry = FilesOf(j)["config.json"]!.AsObject();
                entry[entry.First(kv => kv.Value is JsonValue v && v.TryGetValue<long>(out _)).Key] = value?.DeepClone();
            });
        Entry("entry-hash", "config.json's hash is another file's", j => { var files = FilesOf(j); files["config.json"] = files["trainer.json"]!.DeepClone(); });
        Add("no-manifest", "manifest.json deleted", f => { f.Remove(Manifest); return f; }, Step2);
        Add("no-optimizer", "optimizer.safetensors deleted (and out of the manifest)", f => { f.Remove(Step2 + "optimizer.safetensors"); return Rehashed(f); }, Step2);
        // Changes the manifest agrees with: the model loader meets them.
        foreach (string field in new[] { "n_layers", "d_model", "n_heads", "d_vocab", "n_ctx", "d_mlp" })
            foreach (var (name, value) in HostileNumbers.Where(h => h.Name is "zero" or "negative" or "int32-max" or "2^62" or "1e300" or "string"))
                Add("config-" + name, $"checkpoint config.json {field} = {value?.ToJsonString() ?? "null"} (manifest rewritten)", f =>
                {
                    var json = JsonNode.Parse(f[Config])!.AsObject();
                    json[field] = value?.DeepClone();
                    f[Config] = Bytes.Utf8(json.ToJsonString());
                    return Rehashed(f);
                }, Config, field);
        Add("weights-gpt2-hf", "Hugging Face GPT-2 tensor names in the checkpoint (manifest rewritten)", f => { f[Weights] = f["run/model.safetensors"]; return Rehashed(f); }, Weights);
        Add("weights-shape", "a weight declared [2147483648, 2] (manifest rewritten)", f =>
        {
            var (h, _) = Bytes.SplitSafeTensors(f[Weights]);
            string name = h.Select(kv => kv.Key).First(k => k != "__metadata__");
            f[Weights] = WithTensorHeader(f[Weights], name, t => t["shape"] = new JsonArray(2147483648L, 2));
            return Rehashed(f);
        }, Weights);
        Add("weights-truncated", "model.safetensors cut in half (manifest rewritten)", f => { f[Weights] = f[Weights][..(f[Weights].Length / 2)]; return Rehashed(f); }, Weights);
        Add("finished-config", "the finished folder's config.json is not JSON", f => { f["run/config.json"] = Bytes.Utf8("{\"model_type\": "); return f; }, "run/config.json");
        return list;
    }
}
