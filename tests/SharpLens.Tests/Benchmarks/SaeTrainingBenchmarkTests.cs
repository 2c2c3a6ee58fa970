using SharpLens.Benchmarks;

namespace SharpLens.Tests.Benchmarks;

public class SaeTrainingBenchmarkTests
{
    [Fact]
    public void Sae_benchmark_measures_throughput_below_its_gemm_ceiling_order()
    {
        int before = TorchSharp.torch.get_num_threads();
        try
        {
            var r = SaeTrainingBenchmark.Run(dIn: 32, expansion: 4, batch: 128, steps: 3, threads: 1);
            Assert.Equal(128, r.DSae);
            Assert.True(r.TokensPerSecond > 0 && double.IsFinite(r.TokensPerSecond));
            Assert.True(r.GemmGflops > 0 && double.IsFinite(r.GemmGflops));
            // The share is the median of the interleaved rounds' ratios, so it lies within their range.
            Assert.True(r.ShareOfCeilingMin <= r.ShareOfCeiling && r.ShareOfCeiling <= r.ShareOfCeilingMax && r.ShareOfCeilingMin > 0,
                $"share {r.ShareOfCeiling} outside its rounds' range {r.ShareOfCeilingMin}–{r.ShareOfCeilingMax}");
        }
        finally { TorchSharp.torch.set_num_threads(before); }
    }
}
