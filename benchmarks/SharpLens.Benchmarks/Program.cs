using SharpLens.Benchmarks;

// dotnet run --project benchmarks/SharpLens.Benchmarks -c Release -- [--json] [--seq-len N] [--layers N] [--repeats N] [--threads N]
//   or -- --patching [--layers N] [--patch-tokens N]: the resid_pre patching sweep (batched vs per cell vs attribution)
//   or -- --tracing [--layers N] [--repeats N]: a trace's overhead over a plain forward and over the equivalent hooks
//   or -- --gemm [--repeats N] [--threads N] [--json]: bf16 against fp32 GEMMs on the GPT-2-small forward's and brown-lm training's shapes
//   or -- --bf16 [--layers N] [--seq-len N] [--repeats N] [--threads N] [--json]: only the bf16 vs fp32 forward and GEMM, in short interleaved rounds
//   or -- --load [gpt2|llama|mixtral]: peak memory of loading a GPT-2, a Llama and a Mixtral checkpoint, against their weights
// `sharplens bench` runs the same code with the same options.
try
{
    if (args.Length > 0 && args[0] == "--graph") // attribution graphs: 16/64/256-token prompts against a plain forward + backward
    {
        string? Named(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        IReadOnlyList<AttributionBenchmarkRow> measured;
        if (Named("--model") is { } modelPath && Named("--transcoders") is { } tcPath)
        {
            // A trained model and set, e.g. brown-lm: -- --graph --model ~/.cache/sharplens/organisms/brown-lm-... --transcoders clt-brown
            TorchSharp.torch.set_num_threads(1);
            using var model = SharpLens.Models.HookedTransformer.FromPretrained(modelPath, processing: SharpLens.Models.WeightProcessingOptions.None);
            using var set = SharpLens.Attribution.TranscoderFiles.Load(tcPath);
            // Prompts of real text when the model has a tokenizer: the start of the first Brown validation document.
            IReadOnlyList<int>? text = model.Tokenizer is { } tokenizer
                ? tokenizer.Encode(SharpLens.Corpora.TextCorpus.Open(Named("--corpus") ?? "brown").Split(0.05).Validation[0].Text) : null;
            measured = AttributionBenchmark.Run(model, set, [16, 64, 256], log: Console.Out, text: text);
        }
        else measured = AttributionBenchmark.Run([16, 64, 256], log: Console.Out);
        foreach (var row in measured)
            Console.WriteLine($"{row.Tokens} tokens: time ×{row.TimeRatio:0} of fwd+bwd, memory ×{row.MemoryRatio:0.0}, {row.BackwardPasses} backward passes");
        return 0;
    }
    if (args.Contains("--attention")) // one layer's attention core: fused kernel vs the explicit path, old and new
    {
        int Arg(string name, int fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
        var attention = AttentionPathBenchmark.Run(Arg("--seq-len", 1024), Arg("--repeats", 15), Console.Out);
        foreach (var name in new[] { "explicit_einsum", "explicit_matmul" })
            Console.WriteLine($"{name} / fused: {attention.TimeRatio(name, "fused").Format()}  ({attention.MedianSeconds(name) * 1e3:F1} ms vs {attention.MedianSeconds("fused") * 1e3:F1} ms)");
        Console.WriteLine($"explicit_matmul / explicit_einsum: {attention.TimeRatio("explicit_matmul", "explicit_einsum").Format()}");
        return 0;
    }
    if (args.Contains("--tracing"))
    {
        int Arg(string name, int fallback) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : fallback;
        var tracing = TracingBenchmark.Run(Arg("--layers", 12), Arg("--seq-len", 64), Arg("--repeats", 15));
        Console.WriteLine(args.Contains("--json") ? tracing.ToJson() : tracing.ToTable());
        return 0;
    }
    if (args.Contains("--gemm"))
    {
        int? Arg(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], out int v) ? v : null;
        var rows = GemmShapesBenchmark.Run(Arg("--repeats") ?? 5, Arg("--threads"), args.Contains("--json") ? null : Console.Out);
        Console.WriteLine(args.Contains("--json")
            ? System.Text.Json.JsonSerializer.Serialize(rows.ToList(), BenchmarkJsonContext.Default.ListGemmShapeResult)
            : "\n" + GemmShapesBenchmark.ToTable(rows));
        return 0;
    }
    if (args.Contains("--load"))
    {
        string? only = Array.IndexOf(args, "--load") is int at && at + 1 < args.Length ? args[at + 1] : null;
        foreach (var (family, load) in LoadBenchmark.Families(only, Console.Out))
            Console.WriteLine($"{family}: weights {load.WeightBytes / 1048576.0:F1} MiB, peak extra {load.PeakExtraBytes / 1048576.0:F1} MiB = {load.PeakRatio:F3}x, {load.Seconds:F2} s");
        return 0;
    }
    if (args.Contains("--bf16"))
    {
        var (bf16Options, bf16Json, _) = BenchmarkArguments.Parse([.. args.Where(a => a != "--bf16")]);
        var bf16 = Bfloat16Benchmark.Run(bf16Options, bf16Json ? null : Console.Out);
        Console.WriteLine(bf16Json ? System.Text.Json.JsonSerializer.Serialize(bf16, BenchmarkJsonContext.Default.Bfloat16Result) : "\n" + bf16.ToTable());
        return 0;
    }
    var (options, json, patchTokens) = BenchmarkArguments.Parse(args);
    if (patchTokens is int tokens)
    {
        if (options.Threads is int t) SharpLens.UncaughtNativeCalls.SetNumThreads(t, "--threads");
        var timings = PatchingBenchmark.Run(options.Layers, tokens);
        Console.WriteLine(json ? timings.ToJson() : timings.ToTable());
        return 0;
    }
    var result = ForwardBenchmark.Run(options, json ? null : Console.Out);
    Console.WriteLine(json ? result.ToJson() : "\n" + result.ToTable());
    return 0;
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"benchmark: {e.Message}");
    Console.Error.WriteLine(BenchmarkArguments.Usage);
    return 2;
}
