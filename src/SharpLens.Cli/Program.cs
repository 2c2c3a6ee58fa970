using System.CommandLine;
using SharpLens.Cli;
using SharpLens.Cli.Commands;

var root = new RootCommand("SharpLens: look inside transformers from .NET — hooked models, activation caches, model organisms.");
var verbose = new Option<bool>("--verbose") { Description = "On an error, also print the stack trace (as SHARPLENS_DEBUG=1 does).", Recursive = true };
root.Options.Add(verbose);
var maxMemory = new Option<string?>("--max-memory")
{
    Description = "The most memory a model, SAE or tensor read from a file may need (e.g. 8G, 512M); larger ones are refused before anything is allocated. " +
        $"Default: {SharpLens.IO.SizeCheck.MaxMemoryVariable}, else this machine's memory.",
    Recursive = true,
};
root.Options.Add(maxMemory);
root.Subcommands.Add(TourCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(HeadsCommand.Create());
root.Subcommands.Add(PatchCommand.Create());
root.Subcommands.Add(LensCommand.Create());
root.Subcommands.Add(DlaCommand.Create());
root.Subcommands.Add(ProbeCommand.Create());
root.Subcommands.Add(SteerCommand.Create());
root.Subcommands.Add(GrokkingCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(CacheCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(DownloadCommand.Create());
root.Subcommands.Add(SaeCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(TrainCommand.CreateFinetune());
root.Subcommands.Add(PlanCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(ExploreCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ModelsCommand.Create());
root.Subcommands.Add(GraphCommand.Create());
root.Subcommands.Add(TranscodersCommand.Create());
root.Subcommands.Add(DiffCommand.Create());
root.Subcommands.Add(LmEvalCommand.Create());
root.Subcommands.Add(LearnCommand.Create());
root.Subcommands.Add(ProjectCommand.Create());
root.Subcommands.Add(PosProbeCommand.Create());
try
{
    var parsed = root.Parse(args);
    CommandErrors.Verbose = parsed.GetValue(verbose);
    if (parsed.GetValue(maxMemory) is { } limit)
        SharpLens.IO.SizeCheck.MaxMemoryOverride = SharpLens.IO.SizeCheck.ParseBytes(limit) is long bytes and > 0 ? bytes
            : throw new SharpLens.SharpLensArgumentException("--max-memory", $"--max-memory '{limit}' is not a size; give bytes or a number with K, M, G or T (e.g. 8G).");
    // Errors are reported by CommandErrors (ErrorReport), never as System.CommandLine's "Unhandled exception" stack trace.
    return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) { return CommandErrors.Report(e); }
