using SharpLens.Attribution;
using TorchSharp;

namespace SharpLens.Tests.Attribution;

/// <summary>An attribution frees every tensor it made once its graph is disposed, the batched forward's autograd graph included.</summary>
public class AttributionMemoryTests
{
    [Fact]
    public void Attribute_leaves_no_tensor_alive_on_its_thread()
    {
        var (model, set) = AttributionExactnessTests.Build("plt-relu");
        using var _m = model;
        using var _s = set;
        var rm = new ReplacementModel(model, set);
        using var prompt = torch.tensor(new long[] { 5, 17, 3, 29, 11 });
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 2; i++)
            using (var graph = Attributor.Attribute(rm, prompt, new AttributionOptions { BatchSize = 8 })) { }
        // The embedding leaf, each layer's root and the last block's output were kept out of the forward's dispose
        // scopes by its hooks; they (and the graph of 8 prompt copies they hold) used to wait for the finalizer.
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
