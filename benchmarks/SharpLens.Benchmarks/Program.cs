using SharpLens.Benchmarks;

// dotnet run --project benchmarks/SharpLens.Benchmarks -c Release -- [--json] [--seq-len N] [--layers N] [--repeats N] [--threads N]
// `sharplens bench` runs the same code with the same options.
try
{
    var (options, json) = BenchmarkArguments.Parse(args);
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
