using System.Text;
using System.Text.Json;
using SharpLens.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

public class SafeTensorsTests
{
    static void WriteRaw(string path, string header, int dataBytes, ulong? declaredLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes(declaredLength ?? (ulong)json.Length));
        f.Write(json);
        f.Write(new byte[dataBytes]);
    }

    static SafeTensorsFormatException Rejects(string path)
    {
        var e = Assert.Throws<SafeTensorsFormatException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.Equal(Path.GetFullPath(path), e.FilePath);
        Assert.Contains(Path.GetFileName(path), e.Message);
        return e;
    }

    [Fact]
    public void Written_tensors_read_back_bit_for_bit_in_every_dtype()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var gen = new Generator(5);
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.randn([3, 5], generator: gen),
            ["f16"] = torch.randn([4, 2, 3], generator: gen).to(ScalarType.Float16),
            ["bf16"] = torch.randn([7], generator: gen).to(ScalarType.BFloat16),
            ["i64"] = torch.tensor(new long[] { long.MinValue, -1, 0, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { int.MinValue, 3, int.MaxValue }).reshape(3, 1),
            ["scalar"] = torch.tensor(2.5f),
            ["empty"] = torch.zeros(0, 4),
        };
        string path = dir.File("t.safetensors");
        SafeTensorsWriter.Write(path, tensors);

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(0, file.DataStart % 8);
        Assert.Equal(tensors.Keys.Order(), file.Names.Order());
        foreach (var (name, expected) in tensors)
        {
            var read = file.Read(name);
            Assert.Equal(expected.dtype, read.dtype);
            Assert.Equal(expected.shape, read.shape);
            Assert.True(expected.contiguous().bytes.SequenceEqual(read.bytes), $"bytes of '{name}' differ");
        }
    }

    [Fact]
    public void Header_is_padded_with_spaces_to_an_8_byte_boundary_and_readable_as_plain_json()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("t.safetensors");
        SafeTensorsWriter.Write(path, [new("a", torch.ones(3)), new("bb", torch.ones(1, 2, ScalarType.Float16))]);

        var bytes = File.ReadAllBytes(path);
        long n = (long)BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0, n % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)n);
        int close = header.LastIndexOf('}');
        Assert.All(header[(close + 1)..], c => Assert.Equal(' ', c));
        using var doc = JsonDocument.Parse(header);
        Assert.Equal("[0,12]", doc.RootElement.GetProperty("a").GetProperty("data_offsets").GetRawText());
        Assert.Equal("[12,16]", doc.RootElement.GetProperty("bb").GetProperty("data_offsets").GetRawText());
        Assert.Equal("F16", doc.RootElement.GetProperty("bb").GetProperty("dtype").GetString());
        Assert.Equal(8 + n + 16, bytes.Length);
    }

    [Fact]
    public void ReadInto_a_transposed_view_of_another_dtype_goes_through_row_chunks_and_matches_Read()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var source = torch.randn([37, 6], generator: new Generator(9));
        string path = dir.File("t.safetensors");
        SafeTensorsWriter.Write(path, [new("w", source)]);
        using var file = SafeTensorsFile.Open(path);
        var target = torch.zeros([6, 37], ScalarType.Float64);
        file.ReadInto("w", target.t(), stagingBytes: 5 * 6 * 4); // five rows per chunk: 37 rows take eight chunks, the last partial
        Assert.Equal(0.0, LoadingTestKit.MaxAbsDiff(target.t(), source));
        var direct = torch.zeros([37, 6]);
        file.ReadInto("w", direct);
        Assert.True(direct.bytes.SequenceEqual(source.bytes));
    }

    [Fact]
    public void A_file_shorter_than_8_bytes_is_rejected_as_truncated()
    {
        using var dir = new TempFolder();
        string path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        var e = Rejects(path);
        Assert.Null(e.TensorName);
        Assert.Contains("3 bytes", e.Message);
    }

    [Fact]
    public void A_header_length_larger_than_the_file_is_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.File("long-header.safetensors");
        WriteRaw(path, "{}", 0, declaredLength: 1000);
        var e = Rejects(path);
        Assert.Contains("header length says 1000 bytes but only 2 bytes follow", e.Message);
    }

    [Fact]
    public void A_truncated_data_area_is_rejected_naming_the_tensor_that_runs_past_the_end()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string whole = dir.File("whole.safetensors"), cut = dir.File("cut.safetensors");
        SafeTensorsWriter.Write(whole, [new("first", torch.ones(4)), new("second", torch.ones(10))]);
        var bytes = File.ReadAllBytes(whole);
        File.WriteAllBytes(cut, bytes[..^8]); // lose the last two floats of 'second'

        var e = Rejects(cut);
        Assert.Equal("second", e.TensorName);
        Assert.Contains("run past the end of the data area", e.Message);
    }

    [Fact]
    public void An_unsupported_dtype_is_rejected_naming_the_tensor_and_the_dtype()
    {
        using var dir = new TempFolder();
        string path = dir.File("f64.safetensors");
        WriteRaw(path, """{"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}""", 16);
        var e = Rejects(path);
        Assert.Equal("x", e.TensorName);
        Assert.Contains("dtype 'F64' is not supported", e.Message);
    }

    [Fact]
    public void Offsets_that_disagree_with_the_shape_are_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.File("mismatch.safetensors");
        WriteRaw(path, """{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}""", 24);
        var e = Rejects(path);
        Assert.Equal("w", e.TensorName);
        Assert.Contains("needs 24 bytes but data_offsets [0, 20] hold 20", e.Message);
    }

    [Fact]
    public void Overlapping_tensors_are_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.File("overlap.safetensors");
        WriteRaw(path, """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16);
        var e = Rejects(path);
        Assert.Equal("b", e.TensorName);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void A_header_that_is_not_json_is_rejected()
    {
        using var dir = new TempFolder();
        string path = dir.File("garbage.safetensors");
        WriteRaw(path, "{\"a\": [1, 2", 0);
        Assert.Contains("not valid JSON", Rejects(path).Message);
    }

    [Fact]
    public void A_failed_write_leaves_neither_a_partial_file_nor_a_temporary_and_keeps_the_old_file()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        string path = dir.File("model.safetensors");
        SafeTensorsWriter.Write(path, [new("old", torch.ones(2))]);
        var before = File.ReadAllBytes(path);

        SafeTensorSpec[] specs = [new("a", ScalarType.Float32, [1000]), new("b", ScalarType.Float32, [1000]), new("c", ScalarType.Float32, [1000])];
        var e = Assert.Throws<IOException>(() => SafeTensorsWriter.Write(path, specs,
            name => name == "c" ? throw new IOException("disk full (simulated)") : torch.ones(1000)));
        Assert.Contains("simulated", e.Message);

        Assert.Equal(["model.safetensors"], dir.Files());
        Assert.Equal(before, File.ReadAllBytes(path));
    }
}
