using System.Diagnostics;
using SharpLens.Grokking;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Training speed of the p = 113 grokking model, full batch, against the matrix-multiply ceiling of this machine.</summary>
/// <param name="FlopsPerStep">Matmul FLOPs of one step: 2 per multiply-add forward, twice that backward.</param>
/// <param name="GemmGflops">Float32 GEMM rate measured in the same run, on matrices of the model's sizes.</param>
/// <param name="CeilingStepsPerSecond">GEMM rate / FLOPs per step: what a step bound only by matmuls would reach.</param>
public sealed record GrokkingTrainingResult(int Threads, int Steps, double StepsPerSecond, double FlopsPerStep, double GemmGflops,
    double CeilingStepsPerSecond, double ShareOfCeiling);

public static class GrokkingTrainingBenchmark
{
    public static GrokkingTrainingResult Run(int steps = 20, int threads = 1)
    {
        UncaughtNativeCalls.SetNumThreads(threads);
        var settings = new ModularAdditionSettings();
        using var data = new ModularAddition(settings);
        using var model = new HookedTransformer(settings.ModelConfig(), seed: settings.Seed);
        using var optimizer = optim.AdamW(model.parameters(), lr: settings.LearningRate, beta1: settings.Beta1, beta2: settings.Beta2, weight_decay: settings.WeightDecay);
        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            ModularAddition.Loss(ModularAddition.AnswerLogits(model, data.TrainTokens, settings.P), data.TrainAnswers).backward();
            optimizer.step();
        }
        for (int i = 0; i < 3; i++) Step(); // warm-up
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++) { Step(); if (i % 10 == 9) { GC.Collect(); GC.WaitForPendingFinalizers(); } }
        double stepsPerSecond = steps / clock.Elapsed.TotalSeconds;

        var cfg = settings.ModelConfig();
        long tokens = data.TrainTokens.shape[0] * cfg.NCtx;
        double macsPerToken = cfg.DModel * 3.0 * cfg.NHeads * cfg.DHead + cfg.NHeads * cfg.DHead * cfg.DModel
            + 2.0 * cfg.DModel * cfg.DMlp + cfg.DModel * cfg.DVocab;
        double flopsPerStep = 6 * macsPerToken * tokens; // forward 2·MACs, backward 4·MACs

        // The GEMM the model does most: [tokens, d_model] × [d_model, d_mlp].
        using var x = randn(tokens, cfg.DModel);
        using var w = randn(cfg.DModel, cfg.DMlp);
        for (int i = 0; i < 3; i++) using (x.matmul(w)) { }
        int reps = 30;
        clock.Restart();
        for (int i = 0; i < reps; i++) using (x.matmul(w)) { }
        double gemmFlops = 2.0 * tokens * cfg.DModel * cfg.DMlp * reps / clock.Elapsed.TotalSeconds;
        double ceiling = gemmFlops / flopsPerStep;
        return new GrokkingTrainingResult(threads, steps, stepsPerSecond, flopsPerStep, gemmFlops / 1e9, ceiling, stepsPerSecond / ceiling);
    }
}
