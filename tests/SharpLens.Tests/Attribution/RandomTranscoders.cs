using SharpLens.Attribution;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Attribution;

/// <summary>Random transcoder sets for random models: about half the features fire, so every kind of edge exists.</summary>
static class RandomTranscoders
{
    public static TranscoderSet Make(int nLayers, long dModel, long dTc, bool crossLayer, TranscoderActivation act = TranscoderActivation.Relu,
        bool skip = false, string input = "hook_resid_mid", string output = "hook_mlp_out", long seed = 3, int k = 4)
    {
        var g = new Generator((ulong)seed);
        var wEnc = torch.randn(nLayers, dTc, dModel, generator: g) / Math.Sqrt(dModel);
        var bEnc = 0.1 * torch.randn(nLayers, dTc, generator: g);
        var bDec = 0.1 * torch.randn(nLayers, dModel, generator: g);
        var wDec = Enumerable.Range(0, nLayers).Select(l => 0.3 * torch.randn(dTc, crossLayer ? nLayers - l : 1, dModel, generator: g) / Math.Sqrt(dTc)).ToArray();
        var threshold = act == TranscoderActivation.JumpRelu ? 0.05 * torch.rand(nLayers, dTc, generator: g) : null;
        var s = skip ? 0.1 * torch.randn(nLayers, dModel, dModel, generator: g) / Math.Sqrt(dModel) : null;
        return new TranscoderSet(crossLayer, wEnc, bEnc, bDec, wDec, act, threshold, act == TranscoderActivation.TopK ? k : 0, s, input, output, "random-test");
    }
}
