using System.Text.RegularExpressions;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using static TorchSharp.torch;

namespace SharpLens.Loading.Onnx;

/// <summary>
/// Imports a BERT exported to ONNX from Hugging Face's BertModel (as sentence-transformers models are) into a
/// <see cref="HookedEncoder"/>, by recovering each weight's Hugging Face name and layout and then loading through
/// <see cref="HuggingFaceBert"/>'s one mapping.
/// </summary>
/// <remarks>
/// How names are recovered: the exporter keeps PyTorch names for embeddings, LayerNorm weights and biases
/// (<c>encoder.layer.0.attention.self.query.bias</c>), but a Linear's weight is pre-transposed to [in, out] for a
/// MatMul node and renamed to a bare number (<c>927</c>, or <c>onnx::MatMul_927</c> in newer exporters). Every such
/// Linear is exported as <c>MatMul(x, W)</c> whose output feeds one <c>Add</c> with its bias, so the weight is named
/// after that bias (<c>….query.bias</c> → <c>….query.weight</c>) and transposed back to HF's [out, in]. A MatMul
/// weight with no named bias beside it is an error naming the node.
/// </remarks>
public static partial class OnnxBert
{
    /// <summary>An HF weight name → the initializer holding it and whether it is stored transposed ([in, out]).</summary>
    public static IReadOnlyDictionary<string, (string Initializer, bool Transposed)> HuggingFaceNames(OnnxModelFile file)
    {
        var map = new Dictionary<string, (string, bool)>(StringComparer.Ordinal);
        foreach (var init in file.Initializers.Values.Where(i => i.DataType == OnnxModelFile.FloatType && HfName().IsMatch(i.Name)))
            map[init.Name] = (init.Name, false);

        var consumers = file.Nodes.SelectMany(n => n.Inputs.Select(input => (input, node: n))).ToLookup(x => x.input, x => x.node);
        foreach (var matmul in file.Nodes.Where(n => n.OpType == "MatMul" && n.Inputs.Count == 2))
        {
            if (!file.Initializers.TryGetValue(matmul.Inputs[1], out var weight) || weight.Dims.Length != 2) continue;
            var bias = consumers[matmul.Outputs[0]].Where(n => n.OpType == "Add")
                .SelectMany(n => n.Inputs).FirstOrDefault(i => i.EndsWith(".bias", StringComparison.Ordinal) && file.Contains(i))
                ?? throw new OnnxFormatException(file.Source, weight.Name,
                    $"MatMul node '{matmul.Name}' multiplies by this weight, but no Add after it uses a named bias, so its Hugging Face name cannot be recovered.");
            string name = bias[..^".bias".Length] + ".weight";
            if (!map.TryAdd(name, (weight.Name, true)))
                throw new OnnxFormatException(file.Source, weight.Name, $"two weights map to '{name}'.");
        }
        return map;
    }

    /// <summary>
    /// Reads a BERT's shape from the ONNX weights. The head count and LayerNorm ε are not stored as weights,
    /// so the caller gives them (from the model's config.json).
    /// </summary>
    public static ModelConfig ReadConfig(OnnxModelFile file, int nHeads, double eps, string modelName)
    {
        long[] Dims(string name) => file.Initializers.TryGetValue(name, out var i) ? i.Dims
            : throw new OnnxFormatException(file.Source, name, "the graph lacks this BERT weight; is it a Hugging Face BertModel export?");
        var words = Dims("embeddings.word_embeddings.weight");
        int dModel = (int)words[1];
        if (dModel % nHeads != 0) throw new ArgumentException($"d_model = {dModel} is not divisible by nHeads = {nHeads}.", nameof(nHeads));
        int layers = 0;
        while (file.Contains($"encoder.layer.{layers}.attention.self.query.bias")) layers++;
        return new ModelConfig
        {
            DModel = dModel,
            NLayers = layers,
            NHeads = nHeads,
            DHead = dModel / nHeads,
            DMlp = (int)Dims("encoder.layer.0.intermediate.dense.bias")[0],
            DVocab = (int)words[0],
            NCtx = (int)Dims("embeddings.position_embeddings.weight")[0],
            ActFn = Activation.Gelu, // HF's "gelu" is exact: the export computes it with Erf
            Eps = eps,
            TiedEmbeddings = true,
            ModelName = modelName,
        }.Validated();
    }

    /// <summary>Loads the encoder (no masked-LM head: these exports are BertModel) from an ONNX file's initializers.</summary>
    public static HookedEncoder Load(OnnxModelFile file, ModelConfig config, ModelOptions? options = null)
    {
        var names = HuggingFaceNames(file);
        Tensor Read(string hfName)
        {
            var (init, transposed) = names[hfName];
            var t = file.Read(init);
            return transposed ? t.t() : t; // back to HF's [out, in]
        }
        long[] Shape(string hfName)
        {
            var (init, transposed) = names[hfName];
            var dims = file.Initializers[init].Dims;
            return transposed ? [.. dims.Reverse()] : dims;
        }
        return HuggingFaceBert.Load(config, HuggingFaceTensorSource.From([.. names.Keys], Shape, Read, file.Source), options);
    }

    /// <summary>A PyTorch parameter path (<c>embeddings.LayerNorm.weight</c>), not an exporter's number.</summary>
    [GeneratedRegex(@"^[A-Za-z_][\w]*(\.[\w]+)+$")]
    private static partial Regex HfName();
}
