using System.CommandLine;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens transcoders ...`: transcoder sets for attribution graphs (circuit-tracer's layout).</summary>
public static class TranscodersCommand
{
    public static Command Create()
    {
        var command = new Command("transcoders", "Transcoders (per-layer or cross-layer) that replace a model's MLPs, in circuit-tracer's folder layout, for `sharplens graph`.");
        command.Subcommands.Add(TranscodersTrainCommand.Create());
        return command;
    }
}
