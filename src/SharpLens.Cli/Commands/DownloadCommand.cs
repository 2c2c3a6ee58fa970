using System.CommandLine;
using SharpLens.Loading.Hub;
using Spectre.Console;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens download`: brings a model into the Hugging Face cache (shared with Python) and prints its folder.</summary>
public static class DownloadCommand
{
    public static Command Create()
    {
        var model = new Argument<string?>("model") { Description = "A known name (gpt2, pythia-70m, Llama-3.2-1B, ...) or a Hugging Face repo id (org/name).", Arity = ArgumentArity.ZeroOrOne };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit hash.", DefaultValueFactory = _ => "main" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "The hub cache (default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub)." };
        var list = new Option<bool>("--list") { Description = "List the known names and the repos they stand for, then exit." };
        var command = new Command("download",
            "Download a model's config, weights (safetensors, else PyTorch .bin) and tokenizer files into the Hugging Face cache, " +
            "laid out as huggingface_hub lays it out. Interrupted downloads resume. HF_TOKEN is sent for gated repos; " +
            "HF_HUB_OFFLINE=1 only looks in the cache; HF_ENDPOINT picks a mirror.\n\nExample: sharplens download pythia-70m");
        command.Arguments.Add(model);
        command.Options.Add(revision);
        command.Options.Add(cacheDir);
        command.Options.Add(list);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            if (parse.GetValue(list))
            {
                foreach (var (name, repo) in ModelRegistry.All.OrderBy(p => p.Value, StringComparer.Ordinal).ThenBy(p => p.Key, StringComparer.Ordinal))
                    Console.WriteLine($"{name,-28} {repo}");
                return 0;
            }
            string requested = parse.GetValue(model) ?? throw new ArgumentException("Name the model to download (e.g. sharplens download gpt2), or pass --list to see the known names.", "MODEL");
            var options = HubOptions.FromEnvironment() with { Revision = parse.GetValue(revision)! };
            if (parse.GetValue(cacheDir) is { } dir) options = options with { CacheFolder = dir };
            Console.WriteLine(Resolve(requested, options));
            return 0;
        }));
        return command;
    }

    /// <summary>Resolves a model to a local folder, showing a progress bar per file while anything downloads.</summary>
    public static string Resolve(string nameOrPath, HubOptions? options = null)
    {
        if (Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive)
            return ModelResolver.ResolveFolder(nameOrPath, options, new Callback(p =>
            {
                if (p.BytesDone == p.TotalBytes) Console.Error.WriteLine($"downloaded {p.File} ({p.BytesDone / 1e6:0.0} MB)");
            }));
        string folder = "";
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(context =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                folder = ModelResolver.ResolveFolder(nameOrPath, options, new Callback(p =>
                {
                    lock (tasks)
                    {
                        if (!tasks.TryGetValue(p.File, out var task))
                            tasks[p.File] = task = context.AddTask(Markup.Escape(p.File), maxValue: Math.Max(1, p.TotalBytes ?? 1));
                        if (p.TotalBytes is long total) task.MaxValue = Math.Max(1, total);
                        task.Value = p.BytesDone;
                    }
                }));
            });
        return folder;
    }

    /// <summary>Reports on the downloading thread (unlike <see cref="Progress{T}"/>, which posts to the thread pool).</summary>
    sealed class Callback(Action<DownloadProgress> report) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => report(value);
    }
}
