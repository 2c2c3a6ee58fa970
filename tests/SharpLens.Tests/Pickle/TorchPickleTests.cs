using System.Text.Json;
using SharpLens.Loading;
using SharpLens.Loading.Pickle;
using SharpLens.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;
using static SharpLens.Tests.Loading.LoadingTestKit;

namespace SharpLens.Tests.Pickle;

public class TorchPickleTests(ITestOutputHelper output)
{
    static string PickleFixture(string name) => Path.Combine(Fixture("pickle"), name);

    const string Marker = "/tmp/sharplens-pickle-fixture-was-executed"; // what the malicious fixtures would create

    static Dictionary<string, JsonElement> Expected() =>
        JsonDocument.Parse(File.ReadAllText(PickleFixture("tensors.json"))).RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());

    static ScalarType DType(string torchName) => torchName switch
    {
        "float32" => ScalarType.Float32, "float16" => ScalarType.Float16, "bfloat16" => ScalarType.BFloat16,
        "int64" => ScalarType.Int64, "int32" => ScalarType.Int32,
        _ => throw new ArgumentOutOfRangeException(nameof(torchName), torchName, "dtype not used by the fixture script"),
    };

    static void AssertSameAsScript(string name, JsonElement expected, Tensor actual)
    {
        Assert.Equal(DType(expected.GetProperty("dtype").GetString()!), actual.dtype);
        Assert.Equal(expected.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), actual.shape);
        var values = expected.GetProperty("values").EnumerateArray().ToArray();
        if (actual.is_floating_point())
        {
            // f16/bf16 → f64 is exact, so the script's float64 values must come back bit for bit.
            var got = actual.to(ScalarType.Float64).reshape(-1).data<double>().ToArray();
            Assert.Equal(values.Select(v => v.GetDouble()), got);
        }
        else
        {
            var got = actual.to(ScalarType.Int64).reshape(-1).data<long>().ToArray();
            Assert.Equal(values.Select(v => v.GetInt64()), got);
        }
        Assert.True(actual.is_contiguous(), $"'{name}' should be read out as a contiguous tensor");
    }

    [Fact]
    public void Every_tensor_reads_back_with_the_dtype_shape_and_values_torch_saved()
    {
        using var scope = torch.NewDisposeScope();
        var expected = Expected();
        using var file = TorchPickleFile.Open(PickleFixture("tensors.bin"));
        Assert.Equal(expected.Keys, file.Names); // the state dict's order
        foreach (var (name, entry) in expected) AssertSameAsScript(name, entry, file.Read(name));
    }

    [Fact]
    public void Views_keep_their_strides_offsets_and_shared_storage()
    {
        using var file = TorchPickleFile.Open(PickleFixture("tensors.bin"));
        var transposed = file.Info("transposed");
        Assert.Equal([6L, 4L], transposed.Shape);
        Assert.Equal([1L, 6L], transposed.Stride);
        var slice = file.Info("offset_slice");
        Assert.Equal(transposed.StorageKey, slice.StorageKey); // both are views of one 4×6 base
        Assert.Equal(8, slice.StorageOffset);
        Assert.Equal([6L, 1L], slice.Stride);
        var row0 = file.Info("shared.row0");
        var rows12 = file.Info("shared.rows12");
        Assert.Equal(row0.StorageKey, rows12.StorageKey);
        Assert.Equal(15, row0.StorageElements);
        Assert.Equal((0L, 5L), (row0.StorageOffset, rows12.StorageOffset));
    }

    [Fact]
    public void Sharded_index_reads_the_same_tensors_as_the_single_file()
    {
        using var scope = torch.NewDisposeScope();
        var expected = Expected();
        using var checkpoint = PyTorchCheckpoint.Open(PickleFixture("sharded"));
        Assert.Equal(expected.Keys.Order(), checkpoint.ShardOf.Keys.Order());
        Assert.Equal(2, checkpoint.ShardOf.Values.Distinct().Count());
        foreach (var (name, entry) in expected) AssertSameAsScript(name, entry, checkpoint.Read(name));
    }

    [Theory]
    [InlineData("malicious-os-system.bin", "posix.system")]
    [InlineData("malicious-eval.bin", "builtins.eval")]
    public void Malicious_pickle_is_refused_by_name_and_its_command_never_runs(string fixture, string global)
    {
        if (File.Exists(Marker)) File.Delete(Marker);
        var e = Assert.Throws<UnsafePickleException>(() => TorchPickleFile.Open(PickleFixture(fixture)));
        Assert.Equal(global, e.Global);
        Assert.Contains(fixture, e.Message);
        Assert.Contains($"'{global}'", e.Message);
        Assert.False(File.Exists(Marker), "the pickle's command ran");
    }

    [Fact]
    public void Gpt2_folder_as_pytorch_model_bin_gives_the_safetensors_fixtures_golden_logits()
    {
        using var scope = torch.NewDisposeScope();
        using var fromBin = HookedTransformer.FromPretrained(PickleFixture("gpt2-tiny-tied-bin"), processing: WeightProcessingOptions.None);
        using var fromSafetensors = HookedTransformer.FromPretrained(Fixture("gpt2-tiny-tied"), processing: WeightProcessingOptions.None);
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture("gpt2-tiny-tied"), "golden.json")));
        var entry = golden.RootElement.GetProperty("batch");
        var rows = entry.GetProperty("tokens").EnumerateArray().Select(r => r.EnumerateArray().Select(t => t.GetInt64()).ToArray()).ToArray();
        var tokens = torch.tensor(rows.SelectMany(r => r).ToArray()).reshape(rows.Length, rows[0].Length);
        var shape = entry.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
        var expected = torch.tensor(entry.GetProperty("logits").EnumerateArray().Select(x => x.GetDouble()).ToArray()).reshape(shape);

        var logits = fromBin.Run(tokens);
        double diff = MaxAbsDiff(logits, expected);
        output.WriteLine($"pytorch_model.bin vs golden: max |diff| = {diff:E2}");
        Assert.True(diff < 1e-4, $"max |logit diff| = {diff:E2} against the independent PyTorch forward pass");
        Assert.Equal(0.0, MaxAbsDiff(logits, fromSafetensors.Run(tokens))); // same weights, bit for bit
    }

    [Fact]
    public void A_bare_pickle_file_is_reported_as_the_unsupported_legacy_format()
    {
        using var dir = new Loading.TempFolder();
        File.WriteAllBytes(dir.File("old.bin"), [0x80, 0x02, 0x7D, 0x2E]); // PROTO 2, EMPTY_DICT, STOP: not a zip
        var e = Assert.Throws<PickleFormatException>(() => TorchPickleFile.Open(dir.File("old.bin")));
        Assert.Contains("old.bin", e.Message);
        Assert.Contains("pre-1.6", e.Message);
    }

    [Fact]
    public void Pickle_machine_builds_containers_memo_and_refuses_unknown_globals_anywhere()
    {
        PickleGlobal Resolve(string m, string n) => throw new UnsafePickleException("test.pkl", $"{m}.{n}");
        // PROTO 2; EMPTY_DICT; BINPUT 0; MARK; 'a' BININT1 7; 'b' EMPTY_LIST BINPUT 1 MARK BININT2 300 LONG1(-2) APPENDS;
        // 'c' BINGET 1; SETITEMS; STOP
        byte[] ok = [0x80, 2, 0x7D, 0x71, 0, 0x28, 0x8C, 1, (byte)'a', 0x4B, 7, 0x8C, 1, (byte)'b', 0x5D, 0x71, 1, 0x28,
            0x4D, 0x2C, 0x01, 0x8A, 1, 0xFE, 0x65, 0x8C, 1, (byte)'c', 0x68, 1, 0x75, 0x2E];
        var dict = Assert.IsType<PickleDict>(new PickleMachine("test.pkl", Resolve, id => id).Load(ok));
        Assert.Equal(7L, dict["a"]);
        Assert.Equal([300L, -2L], Assert.IsType<List<object?>>(dict["b"]));
        Assert.Same(dict["b"], dict["c"]); // the memo hands back the same list, as Python's does

        // The same dict with a forbidden global as a value, never called: still refused.
        byte[] hidden = [0x80, 2, 0x7D, 0x8C, 1, (byte)'x', 0x63, .. "os\nsystem\n"u8, 0x73, 0x2E];
        var e = Assert.Throws<UnsafePickleException>(() => new PickleMachine("test.pkl", Resolve, id => id).Load(hidden));
        Assert.Equal("os.system", e.Global);

        var truncated = Assert.Throws<PickleFormatException>(() => new PickleMachine("test.pkl", Resolve, id => id).Load(ok.AsSpan(0, 12)));
        Assert.Contains("test.pkl", truncated.Message);
    }
}
