using System.Globalization;

namespace SharpLens.Benchmarks;

/// <summary>The command line of the benchmarks executable (the CLI's `bench` parses the same options its own way).</summary>
public static class BenchmarkArguments
{
    public const string Usage = "usage: SharpLens.Benchmarks [--json] [--seq-len N (1024)] [--layers N (12)] [--repeats N (5)] [--threads N] | --patching [--layers N (12)] [--patch-tokens N (16)] [--json]";

    /// <summary>The options, whether to print JSON, and the patching benchmark's token count when --patching was given (else null).</summary>
    public static (BenchmarkOptions Options, bool Json, int? PatchTokens) Parse(string[] args)
    {
        var options = new BenchmarkOptions();
        bool json = false, patching = false;
        int patchTokens = 16;
        for (int i = 0; i < args.Length; i++)
        {
            int Next() => i + 1 < args.Length && int.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out int v)
                ? v : throw new ArgumentException($"{args[i]} needs a whole number after it.");
            switch (args[i])
            {
                case "--json": json = true; break;
                case "--seq-len": options = options with { SeqLen = Next() }; break;
                case "--layers": options = options with { Layers = Next() }; break;
                case "--repeats": options = options with { Repeats = Next() }; break;
                case "--threads": options = options with { Threads = Next() }; break;
                case "--patching": patching = true; break;
                case "--patch-tokens": patchTokens = Next(); break;
                default: throw new ArgumentException($"Unknown argument '{args[i]}'.");
            }
        }
        if (patching && patchTokens < 2) throw new ArgumentException($"--patch-tokens {patchTokens}: a patching sweep needs at least 2 tokens.");
        return (options.Validated(), json, patching ? patchTokens : null);
    }
}
