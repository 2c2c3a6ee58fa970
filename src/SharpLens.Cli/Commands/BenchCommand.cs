using System.CommandLine;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens bench`: forward throughput of a GPT-2-small-shaped model against the direct baseline.</summary>
static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure forward throughput of HookedTransformer against a direct TorchSharp forward and the GEMM ceiling.");
        command.SetAction(_ => { Console.Error.WriteLine("bench: not written yet"); return 1; });
        return command;
    }
}
