using System.CommandLine;
using SharpLens.Models.Encoder;
using SharpLens.Server;
using SharpLens.Tracing;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens serve`: load models and run the trace plans clients submit, over HTTP.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model")
        {
            Description = "A model to serve (repeat for several): anything --model accepts elsewhere (a Hugging Face folder, all-MiniLM-L6-v2, an organism such as induction). Clients name it by this string.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var keys = new Option<string>("--keys")
        {
            Description = "API keys file, JSON: { \"keys\": [ { \"key\": \"at least 16 characters\", \"user\": \"alice\", \"max_queued\": 4, \"runs_per_minute\": 600 } ] }.",
            Required = true,
        };
        var url = new Option<string>("--url") { Description = "Where to listen (default http://127.0.0.1:5000, loopback only). Another address exposes the server: put TLS in front of it.", DefaultValueFactory = _ => "http://127.0.0.1:5000" };
        var maxSeconds = new Option<double>("--max-run-seconds") { Description = "A run still going after this many seconds is stopped and its memory freed (default 60).", DefaultValueFactory = _ => 60 };
        var noProcessing = new Option<bool>("--no-processing") { Description = "Serve the weights exactly as stored (default: TransformerLens's weight processing)." };
        var command = new Command("serve",
            "Serve models to remote traces: clients (SharpLens.Tracing.RemoteModel, or any HTTP client) POST JSON plans to /v1/plans with an API key " +
            "and read the saved values back as they stream. Plans are validated before they run; runs on one model queue, per-user quotas apply.\n\n" +
            "Example: sharplens serve --model induction --keys keys.json");
        command.Options.Add(models);
        command.Options.Add(keys);
        command.Options.Add(url);
        command.Options.Add(maxSeconds);
        command.Options.Add(noProcessing);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var apiKeys = ApiKeys.Load(parse.GetValue(keys)!);
            var targets = new Dictionary<string, TraceTarget>();
            foreach (var name in parse.GetValue(models)!.Distinct())
            {
                Console.WriteLine($"Loading {name}...");
                targets[name] = PretrainedEncoders.IsBuiltIn(name) ? TraceTarget.Of(PretrainedEncoders.Load(name))
                    : Directory.Exists(name) && ModelArguments.IsBertFolder(name) ? TraceTarget.Of(HookedEncoder.FromPretrained(name))
                    : TraceTarget.Of(ModelArguments.Load(name, parse.GetValue(noProcessing)));
            }
            var options = new TraceServerOptions { Url = parse.GetValue(url)!, MaxRunTime = TimeSpan.FromSeconds(parse.GetValue(maxSeconds)) };
            var server = TraceServer.StartAsync(targets, apiKeys, options).GetAwaiter().GetResult();
            Console.WriteLine($"Serving {string.Join(", ", targets.Keys)} at {server.Address} ({apiKeys.Count} API key{(apiKeys.Count == 1 ? "" : "s")}, runs stopped after {options.MaxRunTime.TotalSeconds:0.#} s). Ctrl+C stops.");
            using var stop = new ManualResetEventSlim();
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Set(); };
            stop.Wait();
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }
}
