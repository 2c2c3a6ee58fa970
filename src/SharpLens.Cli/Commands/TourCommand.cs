using System.CommandLine;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens tour`: train the induction-head organism and write its report.</summary>
static class TourCommand
{
    public static Command Create()
    {
        var command = new Command("tour", "Train a 2-layer attention-only model on repeated random tokens, find its induction heads, and write an HTML report.");
        command.SetAction(_ => { Console.Error.WriteLine("tour: not written yet"); return 1; });
        return command;
    }
}
