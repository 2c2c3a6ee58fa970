using System.Diagnostics;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Training;
using SharpLens.Training.LanguageModels;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Training speed of brown-lm's shape through the real training path, against the GEMM ceiling measured in the same run.</summary>
/// <param name="TokensPerSecond">Training tokens per second: forward, backward, clipping and AdamW, as <c>sharplens train</c> runs them.</param>
/// <param name="FlopsPerToken">Matmul FLOPs per token: 2 per multiply-add forward, twice that backward (6 per weight in all), attention's causal half included.</param>
/// <param name="CeilingTokensPerSecond">What a step bound only by its matmuls, each at the rate measured for its shape, would reach.</param>
/// <param name="Bf16Speedup">Time of the model's GEMMs in float32 / time in bfloat16 (above 1: bfloat16 is faster here).</param>
public sealed record LanguageModelTrainingResult(string Shape, int Threads, int Steps, long TokensPerStep, double TokensPerSecond, double FlopsPerToken,
    double Float32Gflops, double CeilingTokensPerSecond, double ShareOfCeiling, double Bfloat16Gflops, double Bf16Speedup);

public static class LanguageModelTrainingBenchmark
{
    public static LanguageModelTrainingResult Run(int steps = 10, int threads = 2, string model = BrownLanguageModel.Name)
    {
        UncaughtNativeCalls.SetNumThreads(threads);
        var settings = BrownLanguageModel.Settings(model) with { Steps = steps + 3, WarmupSteps = 1 };
        int vocab = settings.VocabSize ?? 50257, context = settings.Context, rows = settings.WindowsPerStep;
        var cfg = settings.ModelConfig(vocab, vocab - 1, model);
        using var network = new HookedTransformer(cfg, seed: 1);
        using var data = randint(0, vocab, [64, context + 1], dtype: ScalarType.Int64); // random windows: speed does not depend on the text

        // The training path itself: Trainer + the language-model loss, timed from the end of step 3.
        var clock = new Stopwatch();
        Trainer.Train(network, settings.TrainingSettings(),
            (step, generator) => new TrainingBatch(data.index_select(0, randint(0, 64, [rows], generator: generator, dtype: ScalarType.Int64))),
            new TrainingRunOptions { Loss = (m, batch) => LanguageModelTrainer.CrossEntropy(m, batch.Tokens) },
            new Callback(p => { if (p.Step == 3) clock.Start(); }));
        clock.Stop();
        double tokensPerSecond = steps * settings.TokensPerStep / clock.Elapsed.TotalSeconds;

        // The model's GEMMs, [tokens, in] × [in, out], forward; backward does each twice more at the same shapes.
        long tokens = settings.TokensPerStep;
        (long In, long Out, int Count)[] gemms =
        [
            (cfg.DModel, 3L * cfg.DModel, cfg.NLayers), (cfg.DModel, cfg.DModel, cfg.NLayers),
            (cfg.DModel, cfg.DMlp, cfg.GatedMlp ? 2 * cfg.NLayers : cfg.NLayers), // a gated MLP (SwiGLU) has W_gate beside W_in
            (cfg.DMlp, cfg.DModel, cfg.NLayers), (cfg.DModel, vocab, 1),
        ];
        double attentionMacs = cfg.NLayers * 2.0 * cfg.DModel * (context + 1) / 2.0; // q·k and pattern·v over the causal half
        double macsPerToken = gemms.Sum(g => (double)g.In * g.Out * g.Count) + attentionMacs;
        double flopsPerToken = 6 * macsPerToken;
        var (fp32Seconds, fp32Flops) = TimeGemms(gemms, tokens, ScalarType.Float32);
        var (bf16Seconds, _) = TimeGemms(gemms, tokens, ScalarType.BFloat16);
        double fp32Rate = fp32Flops / fp32Seconds;
        // Ceiling: the weights' matmuls at their measured times, attention at the mean rate, all three times (forward + backward).
        double secondsPerToken = 3 * (fp32Seconds / tokens + 2 * attentionMacs / fp32Rate);
        double ceiling = 1 / secondsPerToken;
        return new LanguageModelTrainingResult($"{cfg.NLayers} layers, d_model {cfg.DModel}, context {context}, vocab {vocab}, batch {rows}", threads, steps,
            settings.TokensPerStep, tokensPerSecond, flopsPerToken, fp32Rate / 1e9, ceiling, tokensPerSecond / ceiling, fp32Flops / bf16Seconds / 1e9, fp32Seconds / bf16Seconds);
    }

    /// <summary>Seconds for one forward pass's worth of these GEMMs (best of 5 rounds), and their FLOPs.</summary>
    static (double Seconds, double Flops) TimeGemms((long In, long Out, int Count)[] gemms, long tokens, ScalarType dtype)
    {
        double seconds = 0, flops = 0;
        foreach (var (inputs, outputs, count) in gemms)
        {
            using var x = randn(tokens, inputs).to(dtype);
            using var w = randn(inputs, outputs).to(dtype);
            for (int i = 0; i < 2; i++) using (x.matmul(w)) { }
            double best = double.MaxValue;
            for (int round = 0; round < 5; round++)
            {
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < 3; i++) using (x.matmul(w)) { }
                best = Math.Min(best, clock.Elapsed.TotalSeconds / 3);
            }
            seconds += best * count;
            flops += 2.0 * tokens * inputs * outputs * count;
        }
        return (seconds, flops);
    }

    sealed class Callback(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
