using System.CommandLine;
using SharpLens.Cli.Commands;

var root = new RootCommand("SharpLens: look inside transformers from .NET — hooked models, activation caches, model organisms.");
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
return await root.Parse(args).InvokeAsync();
