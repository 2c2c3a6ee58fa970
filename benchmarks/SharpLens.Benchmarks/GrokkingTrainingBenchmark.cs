using System.Diagnostics;
using SharpLens.Grokking;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Training speed of the p = 113 grokking model, full batch, against the matrix-multiply ceiling of this machine.</summary>
/// <param name="FlopsPerStep">Matmul FLOPs of one step: 2 per multiply-add forward, twice that backward.</param>
/// <param name="GemmGflops">Float32 GEMM rate measured in the same run (the median round), on matrices of the model's sizes.</param>
/// <param name="CeilingStepsPerSecond">GEMM rate / FLOPs per step: what a step bound only by matmuls would reach.</param>
/// <param name="ShareOfCeiling">The median over rounds of (ceiling step time / step time), each round timing both.</param>
/// <param name="ShareOfCeilingMin">The smallest round's share.</param>
/// <param name="ShareOfCeilingMax">The largest round's share.</param>
public sealed record GrokkingTrainingResult(int Threads, int Steps, double StepsPerSecond, double FlopsPerStep, double GemmGflops,
    double CeilingStepsPerSecond, double ShareOfCeiling, double ShareOfCeilingMin = double.NaN, double ShareOfCeilingMax = double.NaN);

public static class GrokkingTrainingBenchmark
{
    /// <summary>
    /// Times <paramref name="steps"/> full-batch training steps interleaved with the GEMM probe (one step, then the
    /// probe, in a rotating order: see <see cref="Interleaved"/>), so the share of the ceiling is a per-round ratio.
    /// </summary>
    public static GrokkingTrainingResult Run(int steps = 20, int threads = 1)
    {
        UncaughtNativeCalls.SetNumThreads(threads);
        var settings = new ModularAdditionSettings();
        using var data = new ModularAddition(settings);
        using var model = new HookedTransformer(settings.ModelConfig(), seed: settings.Seed);
        using var optimizer = optim.AdamW(model.parameters(), lr: settings.LearningRate, beta1: settings.Beta1, beta2: settings.Beta2, weight_decay: settings.WeightDecay);
        int done = 0;
        void Step()
        {
            using (var scope = NewDisposeScope())
            {
                optimizer.zero_grad();
                ModularAddition.Loss(ModularAddition.AnswerLogits(model, data.TrainTokens, settings.P), data.TrainAnswers).backward();
                optimizer.step();
            }
            // As the trainer does (Trainer.CollectEvery): autograd's wrappers outside the scope are freed by finalisers.
            if (++done % 10 == 0) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        }
        for (int i = 0; i < 2; i++) Step(); // warm-up

        var cfg = settings.ModelConfig();
        long tokens = data.TrainTokens.shape[0] * cfg.NCtx;
        double macsPerToken = cfg.DModel * 3.0 * cfg.NHeads * cfg.DHead + cfg.NHeads * cfg.DHead * cfg.DModel
            + 2.0 * cfg.DModel * cfg.DMlp + cfg.DModel * cfg.DVocab;
        double flopsPerStep = 6 * macsPerToken * tokens; // forward 2·MACs, backward 4·MACs

        // The GEMM the model does most: [tokens, d_model] × [d_model, d_mlp], five times a round.
        using var x = randn(tokens, cfg.DModel);
        using var w = randn(cfg.DModel, cfg.DMlp);
        const int gemmsPerRound = 5;
        void Gemms() { for (int i = 0; i < gemmsPerRound; i++) using (x.MatMul(w)) { } }
        var timings = Interleaved.Measure([("step", Step), ("gemm", Gemms)], steps);
        double gemmFlops = 2.0 * tokens * cfg.DModel * cfg.DMlp * gemmsPerRound;
        double CeilingSeconds(int round) => flopsPerStep / (gemmFlops / timings.Seconds("gemm")[round]);
        var share = timings.Ratio(CeilingSeconds, "step");
        double gemmGflops = gemmFlops / timings.MedianSeconds("gemm") / 1e9;
        double ceiling = gemmGflops * 1e9 / flopsPerStep;
        return new GrokkingTrainingResult(threads, steps, 1 / timings.MedianSeconds("step"), flopsPerStep, gemmGflops, ceiling,
            share.Median, share.Min, share.Max);
    }
}
