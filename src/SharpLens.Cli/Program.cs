using System.CommandLine;
using SharpLens.Cli.Commands;

var root = new RootCommand("SharpLens: look inside transformers from .NET — hooked models, activation caches, model organisms.");
root.Subcommands.Add(TourCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(GrokkingCommand.Create());
return await root.Parse(args).InvokeAsync();
