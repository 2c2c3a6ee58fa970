using System.CommandLine;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens diff ...`: model diffing, what a fine-tune changed. Each subcommand is one line in <see cref="Subcommands"/>.</summary>
public static class DiffCommand
{
    static IEnumerable<Command> Subcommands() =>
    [
        DiffCrosscoderCommand.Create(),
        DiffActivationsCommand.Create(),
        DiffWeightsCommand.Create(),
        DiffEncodeCommand.Create(),
    ];

    public static Command Create()
    {
        var command = new Command("diff", "Model diffing: what did fine-tuning change? Crosscoders (dictionary_learning format), the activation difference lens, weight diffs.");
        foreach (var sub in Subcommands()) command.Subcommands.Add(sub);
        return command;
    }
}
