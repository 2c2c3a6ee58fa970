using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

public class PrecisionTests
{
    [Theory]
    [InlineData(ScalarType.BFloat16, 0.1)]
    [InlineData(ScalarType.Float16, 0.02)]
    public void Half_precision_models_run_and_agree_with_float32(ScalarType dtype, double tolerance)
    {
        using var scope = NewDisposeScope();
        var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(2, 10, 50);
        var reference = model.Run(tokens).log_softmax(-1);
        model.MoveTo("cpu", dtype);
        Assert.Equal(dtype, model.embed.W_E.dtype);
        var (logits, cache) = model.RunWithCache(tokens, n => n.EndsWith("hook_pattern"));
        using (cache)
        {
            Assert.Equal(dtype, logits.dtype);
            Assert.Equal(dtype, cache["pattern", 0].dtype);
            double diff = (logits.to(ScalarType.Float32).log_softmax(-1) - reference).abs().max().item<float>();
            Assert.True(diff < tolerance, $"{dtype} log-probs differ from float32 by {diff}");
        }
    }
}
