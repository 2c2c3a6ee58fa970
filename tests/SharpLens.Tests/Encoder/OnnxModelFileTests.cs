using System.Text;
using SharpLens.Loading.Onnx;
using TorchSharp;

namespace SharpLens.Tests.Encoder;

/// <summary>The ONNX reader on small models encoded here by hand, field by field, as onnx.proto defines them.</summary>
public sealed class OnnxModelFileTests
{
    // Protobuf encoding: a key is (field << 3 | wire type); wire type 0 is a varint, 2 a length-prefixed payload.
    static byte[] Varint(ulong v) { var b = new List<byte>(); do { byte x = (byte)(v & 0x7F); v >>= 7; b.Add(v != 0 ? (byte)(x | 0x80) : x); } while (v != 0); return [.. b]; }
    static byte[] Field(int field, byte[] payload) => [.. Varint((ulong)(field << 3 | 2)), .. Varint((ulong)payload.Length), .. payload];
    static byte[] Field(int field, string text) => Field(field, Encoding.UTF8.GetBytes(text));
    static byte[] Number(int field, ulong value) => [.. Varint((ulong)(field << 3)), .. Varint(value)];

    static byte[] Tensor(string name, long[] dims, float[] values, bool packedDims = false)
    {
        var raw = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        byte[] dimBytes = packedDims ? Field(1, [.. dims.SelectMany(d => Varint((ulong)d))]) : [.. dims.SelectMany(d => Number(1, (ulong)d))];
        return [.. dimBytes, .. Number(2, 1), .. Field(8, name), .. Field(9, raw)];
    }

    static byte[] Node(string op, string name, string[] inputs, string[] outputs) =>
        [.. inputs.SelectMany(i => Field(1, i)), .. outputs.SelectMany(o => Field(2, o)), .. Field(3, name), .. Field(4, op)];

    /// <summary>A Linear exported the usual way: MatMul by a numbered [in, out] weight, then Add of a named bias.</summary>
    static byte[] LinearModel(bool withBias = true)
    {
        byte[] graph =
        [
            .. Field(1, Node("MatMul", "MatMul_7", ["x", "onnx::MatMul_12"], ["y"])),
            .. (withBias ? Field(1, Node("Add", "Add_8", ["layer.dense.bias", "y"], ["z"])) : []),
            .. Field(5, Tensor("onnx::MatMul_12", [2, 3], [1, 2, 3, 4, 5, 6])),
            .. Field(5, Tensor("layer.dense.bias", [3], [0.5f, -0.5f, 1], packedDims: true)),
        ];
        return [.. Number(1, 8), .. Field(7, graph)]; // ir_version 8 is skipped like any other field
    }

    [Fact]
    public void Initializers_and_nodes_read_back_with_their_shapes_and_values()
    {
        var file = OnnxModelFile.Read(new MemoryStream(LinearModel()), "linear.onnx");
        Assert.Equal(["MatMul", "Add"], file.Nodes.Select(n => n.OpType));
        Assert.Equal(["x", "onnx::MatMul_12"], file.Nodes[0].Inputs);
        using var w = file.Read("onnx::MatMul_12");
        Assert.Equal([2L, 3L], w.shape);
        Assert.Equal([1f, 2, 3, 4, 5, 6], w.data<float>().ToArray());
        using var b = file.Read("layer.dense.bias");
        Assert.Equal([3L], b.shape);
    }

    [Fact]
    public void A_numbered_matmul_weight_takes_its_bias_name_and_is_marked_transposed()
    {
        var names = OnnxBert.HuggingFaceNames(OnnxModelFile.Read(new MemoryStream(LinearModel()), "linear.onnx"));
        Assert.Equal(("onnx::MatMul_12", true), names["layer.dense.weight"]);
        Assert.Equal(("layer.dense.bias", false), names["layer.dense.bias"]);
        Assert.Equal(2, names.Count);
    }

    [Fact]
    public void A_matmul_weight_without_a_named_bias_is_an_error_naming_the_node()
    {
        var file = OnnxModelFile.Read(new MemoryStream(LinearModel(withBias: false)), "linear.onnx");
        var e = Assert.Throws<OnnxFormatException>(() => OnnxBert.HuggingFaceNames(file));
        Assert.Contains("MatMul_7", e.Message);
        Assert.Equal("onnx::MatMul_12", e.TensorName);
    }

    [Fact]
    public void Truncated_or_foreign_bytes_are_reported_with_the_file_name()
    {
        var bytes = LinearModel();
        var truncated = Assert.Throws<OnnxFormatException>(() => OnnxModelFile.Read(new MemoryStream(bytes[..^5]), "cut.onnx"));
        Assert.Contains("cut.onnx", truncated.Message);
        Assert.Contains("truncated", truncated.Message);
        var noGraph = Assert.Throws<OnnxFormatException>(() => OnnxModelFile.Read(new MemoryStream(Number(1, 8)), "empty.onnx"));
        Assert.Contains("no graph", noGraph.Message);
    }
}
