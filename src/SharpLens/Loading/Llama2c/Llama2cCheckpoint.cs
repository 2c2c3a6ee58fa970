using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading.Llama2c;

/// <summary>The seven int32 that open a llama2.c <c>.bin</c> checkpoint (karpathy/llama2.c, "version 0" / legacy export).</summary>
/// <param name="SharedClassifier">Stored as the sign of vocab_size: positive when the classifier is the token embedding.</param>
public sealed record Llama2cHeader(int Dim, int HiddenDim, int NLayers, int NHeads, int NKvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    public const int Bytes = 7 * sizeof(int);
    public int HeadSize => Dim / NHeads;
    public int KvDim => NKvHeads * HeadSize;

    /// <summary>The tensors of the file in order, with their shapes as llama2.c's PyTorch model holds them ([out, in] for linears).</summary>
    public IEnumerable<(string Name, long[] Shape)> Layout()
    {
        yield return ("tok_embeddings.weight", [VocabSize, Dim]);
        // Per kind of weight, all layers one after another: that is how export.py writes and run.c maps them.
        foreach (var (kind, shape) in new (string, long[])[]
        {
            ("attention_norm.weight", [Dim]), ("attention.wq.weight", [Dim, Dim]), ("attention.wk.weight", [KvDim, Dim]),
            ("attention.wv.weight", [KvDim, Dim]), ("attention.wo.weight", [Dim, Dim]), ("ffn_norm.weight", [Dim]),
            ("feed_forward.w1.weight", [HiddenDim, Dim]), ("feed_forward.w2.weight", [Dim, HiddenDim]), ("feed_forward.w3.weight", [HiddenDim, Dim]),
        })
            for (int layer = 0; layer < NLayers; layer++) yield return ($"layers.{layer}.{kind}", shape);
        yield return ("norm.weight", [Dim]);
        // Precomputed rotary tables; run.c skips them and recomputes, so do we (see Llama2cCheckpoint.RotaryTables).
        yield return ("freqs_cos", [SeqLen, HeadSize / 2]);
        yield return ("freqs_sin", [SeqLen, HeadSize / 2]);
        if (!SharedClassifier) yield return ("output.weight", [VocabSize, Dim]);
    }

    /// <summary>The file's size as the header implies it, computed in closed form (no layer is enumerated); null when it overflows 64 bits.</summary>
    public long? FileBytesOrNull
    {
        get
        {
            // Int128 holds every product of int32 header fields exactly.
            Int128 d = Dim, h = HiddenDim, kv = KvDim, v = VocabSize, s = SeqLen, hs = HeadSize;
            Int128 perLayer = d + d * d + 2 * kv * d + d * d + d + 3 * h * d;
            Int128 values = v * d + NLayers * perLayer + d + 2 * s * (hs / 2) + (SharedClassifier ? 0 : v * d);
            Int128 bytes = Bytes + values * sizeof(float);
            return bytes > long.MaxValue ? null : (long)bytes;
        }
    }

    public long FileBytes => FileBytesOrNull ?? long.MaxValue;
}

/// <summary>
/// Reads and writes llama2.c checkpoints: a header of seven int32 (<see cref="Llama2cHeader"/>) and then every weight
/// as raw little-endian float32, in llama2.c's own names and layouts. Mapping to a model lives in
/// <c>Llama2cConversion</c>; nothing here knows about hooks.
/// </summary>
/// <remarks>
/// llama2.c's rotary embedding rotates adjacent pairs (q[2i], q[2i+1]), as Meta's original Llama code does, while the
/// Hugging Face Llama layout (and SharpLens) rotates half against half; converting therefore permutes the rows of wq
/// and wk within each head (see <c>Llama2cConversion</c>). Fixed by the format: RMSNorm eps 1e-5, rope theta
/// 10000, SiLU-gated MLP (w1 gate, w3 up, w2 down), no biases.
/// </remarks>
public static class Llama2cCheckpoint
{
    public const double RmsNormEps = 1e-5, RopeTheta = 10000;

    public static Llama2cHeader ReadHeader(string path)
    {
        path = Path.GetFullPath(path);
        using var stream = OpenExisting(path);
        return ReadHeader(stream, path);
    }

    /// <summary>The header and every tensor (float32, llama2.c names) of a <c>.bin</c> file.</summary>
    public static (Llama2cHeader Header, Dictionary<string, Tensor> Tensors) Read(string path)
    {
        path = Path.GetFullPath(path);
        using var stream = OpenExisting(path);
        var header = ReadHeader(stream, path);
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, shape) in header.Layout())
            {
                long count = shape.Aggregate(1L, (a, b) => a * b);
                var values = new float[count];
                stream.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
                if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("llama2.c files are little-endian; this machine is not.");
                tensors[name] = tensor(values).reshape(shape);
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return (header, tensors);
    }

    /// <summary>Writes a checkpoint atomically; <paramref name="tensors"/> holds every name of the header's layout except the rotary tables.</summary>
    public static void Write(string path, Llama2cHeader header, IReadOnlyDictionary<string, Tensor> tensors)
    {
        var (cos, sin) = RotaryTables(header);
        using (cos)
        using (sin)
            IO.AtomicFile.Write(path, stream =>
            {
                using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
                foreach (int value in new[] { header.Dim, header.HiddenDim, header.NLayers, header.NHeads, header.NKvHeads,
                             header.SharedClassifier ? header.VocabSize : -header.VocabSize, header.SeqLen })
                    writer.Write(value);
                foreach (var (name, shape) in header.Layout())
                {
                    var t = name switch { "freqs_cos" => cos, "freqs_sin" => sin, _ => tensors.TryGetValue(name, out var found) ? found
                        : throw new ArgumentException($"No tensor '{name}' to write to {path}; a llama2.c file needs every weight of its layout.", nameof(tensors)) };
                    if (!t.shape.SequenceEqual(shape))
                        throw new ArgumentException($"Tensor '{name}' has shape {ShapeText.Of(t.shape)}; {path} needs {ShapeText.Of(shape)}.", nameof(tensors));
                    using var values = t.detach().to(ScalarType.Float32).cpu().contiguous();
                    writer.Write(MemoryMarshal.AsBytes(values.data<float>().ToArray().AsSpan()));
                }
            });
    }

    /// <summary>cos and sin of position·θ_i, θ_i = 10000^(−2i / head_size): [seq_len, head_size / 2] each, as export.py stores them.</summary>
    public static (Tensor Cos, Tensor Sin) RotaryTables(Llama2cHeader header)
    {
        using var scope = NewDisposeScope();
        var inverseFrequency = 1.0 / pow(RopeTheta, arange(0, header.HeadSize, 2, dtype: ScalarType.Float64) / header.HeadSize); // [head_size/2]
        var angles = outer(arange(header.SeqLen, dtype: ScalarType.Float64), inverseFrequency);                               // [seq_len, head_size/2]
        return (angles.cos().to(ScalarType.Float32).MoveToOuterDisposeScope(), angles.sin().to(ScalarType.Float32).MoveToOuterDisposeScope());
    }

    static FileStream OpenExisting(string path) => File.Exists(path) ? File.OpenRead(path)
        : throw new FileNotFoundException($"No llama2.c checkpoint at '{path}'.", path);

    static Llama2cHeader ReadHeader(Stream stream, string path)
    {
        if (stream.Length < Llama2cHeader.Bytes)
            throw new CheckpointException(path, null, $"{stream.Length} bytes is too short for a llama2.c checkpoint (its header alone is {Llama2cHeader.Bytes}).");
        Span<int> v = stackalloc int[7];
        stream.ReadExactly(MemoryMarshal.AsBytes(v));
        string[] names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
        for (int i = 0; i < 7; i++)
            if (v[i] == 0 || (i != 5 && v[i] < 0) || v[i] == int.MinValue)
                throw new CheckpointException(path, names[i], $"header field {names[i]} is {v[i]}; this is not a llama2.c checkpoint (or one with a newer versioned header, which starts with the magic 0x616b3432 and is not supported).");
        var header = new Llama2cHeader(v[0], v[1], v[2], v[3], v[4], Math.Abs(v[5]), v[6], SharedClassifier: v[5] > 0);
        if (header.Dim % header.NHeads != 0 || header.NHeads % header.NKvHeads != 0 || header.HeadSize % 2 != 0)
            throw new CheckpointException(path, "n_heads", $"header dim {header.Dim}, n_heads {header.NHeads}, n_kv_heads {header.NKvHeads} do not give an even head size shared by whole key/value groups.");
        if (header.FileBytesOrNull is null)
            throw new CheckpointException(path, null, $"its header ({header}) implies more than 2^63 bytes; this is not a llama2.c checkpoint.");
        if (stream.Length != header.FileBytes)
        {
            var other = header with { SharedClassifier = !header.SharedClassifier };
            string hint = stream.Length == other.FileBytes
                ? $" The size fits a {(other.SharedClassifier ? "shared" : "separate")} classifier: the sign of vocab_size in the header is wrong."
                : " The file is truncated or is not in the legacy llama2.c layout.";
            throw new CheckpointException(path, null, $"is {stream.Length} bytes, but its header ({header}) implies {header.FileBytes}.{hint}");
        }
        return header;
    }
}
