using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>SAE training throughput against the matrix-multiply ceiling measured in the same run.</summary>
/// <param name="TokensPerSecond">Activations (tokens) trained on per second by <see cref="SaeTrainer"/> (the median round).</param>
/// <param name="CeilingTokensPerSecond">Tokens per second if a step cost only its five GEMMs, timed here on the same shapes.</param>
/// <param name="ShareOfCeiling">The median over rounds of (GEMM time / step time), each round timing both.</param>
/// <param name="PeakExtraBytes">Peak resident memory above the start while one timed step ran.</param>
public sealed record SaeTrainingResult(int DIn, int DSae, int Batch, int Threads, int Steps, double TokensPerSecond,
    double GemmGflops, double CeilingTokensPerSecond, double ShareOfCeiling, long PeakExtraBytes,
    double ShareOfCeilingMin = double.NaN, double ShareOfCeilingMax = double.NaN);

public static class SaeTrainingBenchmark
{
    /// <summary>
    /// Times <paramref name="steps"/> training steps of a standard (ReLU, L1) SAE, d_in × expansion features, on random
    /// batches, interleaved (<see cref="Interleaved"/>) with the GEMMs one step must do: encoder and decoder forward, and
    /// backward the feature gradient, ∂W_dec and ∂W_enc (2·batch·d_in·d_sae FLOPs each).
    /// </summary>
    public static SaeTrainingResult Run(int dIn = 768, int expansion = 16, int batch = 1024, int steps = 5, int threads = 1)
    {
        UncaughtNativeCalls.SetNumThreads(threads);
        int dSae = dIn * expansion;
        using var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, dIn, dSae), seed: 1);
        using var trainer = new SaeTrainer(sae, new SaeTrainingSettings { Steps = 2 * steps + 4, LearningRate = 1e-4, ReportEvery = int.MaxValue });
        using var data = torch.randn(batch, dIn, generator: new Generator(2));
        trainer.TrainStep(data); // warm-up, allocations
        var (peak, _) = PeakMemory.Measure(() => trainer.TrainStep(data));

        using var scope = torch.NewDisposeScope();
        var x = torch.randn(batch, dIn);
        var f = torch.randn(batch, dSae);
        var wEnc = torch.randn(dIn, dSae);
        var wDec = torch.randn(dSae, dIn);
        void Gemms()
        {
            using var s = torch.NewDisposeScope();
            _ = x.MatMul(wEnc);             // encoder forward   [batch, d_sae]
            _ = f.MatMul(wDec);             // decoder forward   [batch, d_in]
            _ = x.MatMul(wDec.t());         // ∂features = ∂out W_decᵀ [batch, d_sae]
            _ = f.t().MatMul(x);            // ∂W_dec = fᵀ ∂out  [d_sae, d_in]
            _ = x.t().MatMul(f);            // ∂W_enc = xᵀ ∂pre  [d_in, d_sae]
        }
        var timings = Interleaved.Measure([("step", () => trainer.TrainStep(data)), ("gemm", Gemms)], steps);
        var share = timings.TimeRatio("gemm", "step");
        double gemmSeconds = timings.MedianSeconds("gemm");
        double flops = 5 * 2.0 * batch * dIn * dSae;
        return new SaeTrainingResult(dIn, dSae, batch, threads, steps, batch / timings.MedianSeconds("step"), flops / gemmSeconds / 1e9,
            batch / gemmSeconds, share.Median, peak, share.Min, share.Max);
    }
}
