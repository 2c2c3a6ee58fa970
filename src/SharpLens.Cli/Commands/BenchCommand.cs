using System.CommandLine;
using SharpLens.Benchmarks;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens bench`: forward throughput of a GPT-2-small-shaped model against the direct baseline.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of the table." };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens in the input (1 to 1024).", DefaultValueFactory = _ => 1024 };
        var layers = new Option<int>("--layers") { Description = "Number of blocks (GPT-2 small has 12).", DefaultValueFactory = _ => 12 };
        var repeats = new Option<int>("--repeats") { Description = "Interleaved rounds (each runs every variant once); ratios are the median of the rounds' ratios, min–max beside it.", DefaultValueFactory = _ => 5 };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (default: libtorch's choice)." };
        var patching = new Option<bool>("--patching") { Description = "Instead: time a full resid_pre activation-patching sweep, batched against one forward pass per cell, and attribution patching." };
        var grokking = new Option<bool>("--grokking") { Description = "Instead: training steps per second of the p = 113 grokking model (full batch) against the matrix-multiply ceiling measured in the same run (uses --threads, default 1)." };
        var sae = new Option<bool>("--sae") { Description = "Instead: SAE training throughput (tokens/s), d_in 768 with 16× expansion, batch 1024, against the matrix-multiply ceiling measured in the same run (uses --threads, default 1)." };
        var train = new Option<bool>("--train") { Description = "Instead: language-model training tokens/s for brown-lm's shape (the real training path) against the GEMM ceiling measured in the same run, and whether bfloat16 matmuls are faster here (uses --threads, default 2; --model-name brown-lm-tiny for the small one)." };
        var trainModel = new Option<string>("--model-name") { Description = "With --train: brown-lm or brown-lm-tiny.", DefaultValueFactory = _ => "brown-lm" };
        var gemm = new Option<bool>("--gemm") { Description = "Instead: libtorch's bfloat16 GEMM against float32 on every weight product of the GPT-2-small forward and of a brown-lm training step, timed interleaved (uses --repeats and --threads)." };
        var bf16 = new Option<bool>("--bf16") { Description = "Instead: only the bfloat16 forward against the float32 one and their GEMMs, in short interleaved rounds (uses --layers, --seq-len, --repeats, --threads)." };
        var patchTokens = new Option<int>("--patch-tokens") { Description = "With --patching: tokens in the prompt pair (cells = layers × tokens).", DefaultValueFactory = _ => 16 };

        var command = new Command("bench", "Measure forward throughput of HookedTransformer against a direct TorchSharp forward and the GEMM ceiling " +
            "(or, with --patching, the time of a full activation-patching sweep).");
        foreach (var option in new Option[] { json, seqLen, layers, repeats, threads, patching, patchTokens, grokking, sae, train, trainModel, gemm, bf16 }) command.Options.Add(option);
        command.SetAction(parseResult => CommandErrors.Run(parseResult, () =>
        {
            var options = new BenchmarkOptions(parseResult.GetValue(seqLen), parseResult.GetValue(layers), parseResult.GetValue(repeats), parseResult.GetValue(threads));
            bool asJson = parseResult.GetValue(json);
            if (parseResult.GetValue(patching))
            {
                int tokens = parseResult.GetValue(patchTokens);
                if (tokens < 2) throw new ArgumentOutOfRangeException("--patch-tokens", tokens, "a patching sweep needs at least 2 tokens.");
                if (options.Threads is int t) UncaughtNativeCalls.SetNumThreads(t, "--threads");
                var timings = PatchingBenchmark.Run(options.Layers, tokens);
                Console.WriteLine(asJson ? timings.ToJson() : timings.ToTable());
                return 0;
            }
            if (parseResult.GetValue(bf16))
            {
                var b = Bfloat16Benchmark.Run(options, asJson ? null : Console.Out);
                Console.WriteLine(asJson ? System.Text.Json.JsonSerializer.Serialize(b, BenchmarkJsonContext.Default.Bfloat16Result) : Environment.NewLine + b.ToTable());
                return 0;
            }
            if (parseResult.GetValue(gemm))
            {
                var rows = GemmShapesBenchmark.Run(options.Repeats, options.Threads, asJson ? null : Console.Out);
                Console.WriteLine(asJson
                    ? System.Text.Json.JsonSerializer.Serialize(rows.ToList(), BenchmarkJsonContext.Default.ListGemmShapeResult)
                    : Environment.NewLine + GemmShapesBenchmark.ToTable(rows));
                return 0;
            }
            if (parseResult.GetValue(grokking))
            {
                var g = GrokkingTrainingBenchmark.Run(steps: 20, threads: options.Threads ?? 1);
                Console.WriteLine(asJson
                    ? System.Text.Json.JsonSerializer.Serialize(g, BenchmarkJsonContext.Default.GrokkingTrainingResult)
                    : $"grokking model (p = 113, full batch), {g.Threads} thread(s): {g.StepsPerSecond:F2} steps/s; " +
                      $"ceiling {g.CeilingStepsPerSecond:F2} steps/s ({g.FlopsPerStep / 1e9:F1} GFLOP per step at {g.GemmGflops:F1} GFLOP/s GEMM); {g.ShareOfCeiling:P0} of the ceiling (median of {g.Steps} interleaved rounds; {g.ShareOfCeilingMin:P0}–{g.ShareOfCeilingMax:P0})");
                return 0;
            }
            if (parseResult.GetValue(train))
            {
                var t = LanguageModelTrainingBenchmark.Run(steps: 10, threads: options.Threads ?? 2, model: parseResult.GetValue(trainModel)!);
                Console.WriteLine(asJson
                    ? System.Text.Json.JsonSerializer.Serialize(t, BenchmarkJsonContext.Default.LanguageModelTrainingResult)
                    : $"language-model training ({t.Shape}), {t.Threads} thread(s): {t.TokensPerSecond:F0} tokens/s; ceiling {t.CeilingTokensPerSecond:F0} tokens/s " +
                      $"({t.FlopsPerToken / 1e6:F1} MFLOP per token, model GEMMs at {t.Float32Gflops:F1} GFLOP/s float32); {t.ShareOfCeiling:P0} of the ceiling. " +
                      $"bfloat16 GEMMs at {t.Bfloat16Gflops:F1} GFLOP/s: {t.Bf16Speedup:F2}× float32's speed");
                return 0;
            }
            if (parseResult.GetValue(sae))
            {
                var r = SaeTrainingBenchmark.Run(threads: options.Threads ?? 1);
                Console.WriteLine(asJson
                    ? System.Text.Json.JsonSerializer.Serialize(r, BenchmarkJsonContext.Default.SaeTrainingResult)
                    : $"SAE training (d_in {r.DIn}, d_sae {r.DSae}, batch {r.Batch}), {r.Threads} thread(s): {r.TokensPerSecond:F0} tokens/s; " +
                      $"ceiling {r.CeilingTokensPerSecond:F0} tokens/s (five GEMMs at {r.GemmGflops:F1} GFLOP/s); {r.ShareOfCeiling:P0} of the ceiling (median of {r.Steps} interleaved rounds; {r.ShareOfCeilingMin:P0}–{r.ShareOfCeilingMax:P0}); peak +{r.PeakExtraBytes / 1048576.0:F0} MiB");
                return 0;
            }
            var result = ForwardBenchmark.Run(options, asJson ? null : Console.Out);
            Console.WriteLine(asJson ? result.ToJson() : Environment.NewLine + result.ToTable());
            return 0;
        }));
        return command;
    }
}
