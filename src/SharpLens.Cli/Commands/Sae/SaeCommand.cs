using System.CommandLine;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens sae ...`: sparse autoencoders. Each subcommand is one line in <see cref="Subcommands"/>.</summary>
public static class SaeCommand
{
    static IEnumerable<Command> Subcommands() =>
    [
        SaeEncodeCommand.Create(),
        SaeTrainCommand.Create(),
        SaeEvalCommand.Create(),
        SaeDashboardCommand.Create(),
    ];

    public static Command Create()
    {
        var command = new Command("sae", "Sparse autoencoders and transcoders: SAELens folders and Gemma Scope params.npz files.");
        foreach (var sub in Subcommands()) command.Subcommands.Add(sub);
        return command;
    }
}
