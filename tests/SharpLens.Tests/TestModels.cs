using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests;

/// <summary>Small random models and inputs that tests build for themselves.</summary>
static class TestModels
{
    public static ModelConfig Tiny(bool attnOnly = false, Normalization norm = Normalization.LN, bool useAttnResult = false) => new()
    {
        DModel = 32, NLayers = 2, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 50, NCtx = 24,
        ActFn = Activation.GeluNew, NormalizationType = norm, AttnOnly = attnOnly, UseAttnResult = useAttnResult,
        ModelName = "tiny-test",
    };

    /// <summary>A model whose biases and norm weights are random too, so no term of the maths is trivially zero.</summary>
    public static HookedTransformer RandomModel(ModelConfig? config = null, long seed = 1)
    {
        var model = new HookedTransformer(config ?? Tiny(), seed: seed);
        using var _ = torch.no_grad();
        var generator = new Generator((ulong)seed + 100);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith(".w", StringComparison.Ordinal)) p.copy_(1 + 0.2 * torch.randn(p.shape, generator: generator));
            else if (!name.Split('.')[^1].StartsWith("W_", StringComparison.Ordinal)) p.copy_(0.1 * torch.randn(p.shape, generator: generator));
        }
        return model;
    }

    public static Tensor RandomTokens(long batch, long pos, int dVocab, long seed = 7) =>
        torch.randint(0, dVocab, [batch, pos], generator: new Generator((ulong)seed), dtype: ScalarType.Int64);
}
