using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

/// <summary>A fresh folder under the temp directory, deleted with everything in it on dispose.</summary>
sealed class TempFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "sharplens-loading-" + Guid.NewGuid().ToString("N"));
    public TempFolder() => Directory.CreateDirectory(Path);
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public string[] Files() => [.. Directory.EnumerateFiles(Path, "*", SearchOption.AllDirectories).Select(System.IO.Path.GetFileName).Order()!];
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}

static class LoadingTestKit
{
    public static string Fixture(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", name);

    public static ModelConfig Gpt2Shaped(bool tied, Activation act = Activation.GeluNew) => new()
    {
        DModel = 24, NLayers = 2, NHeads = 3, DHead = 8, DMlp = 40, DVocab = 37, NCtx = 16,
        ActFn = act, TiedEmbeddings = tied, BosTokenId = 0, ModelName = "random-gpt2",
    };

    /// <summary>A model whose every weight, bias and LayerNorm parameter is random (b_U stays 0: GPT-2 has none).</summary>
    public static HookedTransformer RandomModel(ModelConfig cfg, long seed = 7, ModelOptions? options = null)
    {
        var model = new HookedTransformer(cfg, options);
        using var _ = torch.no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name == "unembed.b_U") continue;
            if (name.EndsWith(".w", StringComparison.Ordinal)) p.normal_(1, 0.1, generator);
            else p.normal_(0, 0.2, generator);
        }
        if (cfg.TiedEmbeddings) model.unembed.W_U.copy_(model.embed.W_E.t());
        return model;
    }

    public static Tensor Tokens(int vocab, int batch = 2, int pos = 9, long seed = 11) =>
        torch.randint(vocab, [batch, pos], generator: new Generator((ulong)seed));

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return (a.to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs().max().item<double>();
    }
}
