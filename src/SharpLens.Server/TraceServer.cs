using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using SharpLens.Tracing;

namespace SharpLens.Server;

/// <summary>
/// A SharpLens server (ASP.NET Core on Kestrel): it holds models loaded at start and runs the trace plans clients
/// submit — never code. Before a plan is queued the server checks the API key, the user's quota, and the plan itself
/// (schema, limits, hooks, order); a run past the time limit is stopped and its tensors freed; results stream back
/// as they are ready. The wire format is <see cref="RunEvent"/>'s; the client is <see cref="RemoteModel"/>.
/// </summary>
public sealed class TraceServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly Dictionary<string, ModelWorker> _workers;
    readonly ApiKeys _keys;
    readonly TraceServerOptions _options;
    readonly Dictionary<string, int> _inFlight = [];            // per user: queued or running
    readonly Dictionary<string, Queue<DateTime>> _recent = [];  // per user: submissions in the last minute

    TraceServer(WebApplication app, Dictionary<string, ModelWorker> workers, ApiKeys keys, TraceServerOptions options) =>
        (_app, _workers, _keys, _options) = (app, workers, keys, options);

    /// <summary>The address it listens on (with the real port when the options asked for port 0).</summary>
    public Uri Address => new(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>Runs finished, timed out, and the worker thread's live tensors before and after its last run, per model.</summary>
    public IReadOnlyDictionary<string, (long Completed, long TimedOut, long LiveBefore, long LiveAfter)> Statistics =>
        _workers.ToDictionary(w => w.Key, w => (w.Value.Completed, w.Value.TimedOut, w.Value.LiveTensors.Before, w.Value.LiveTensors.After));

    /// <summary>Builds the server and starts listening; the models are measured (hook order) before the first request.</summary>
    public static async Task<TraceServer> StartAsync(IReadOnlyDictionary<string, TraceTarget> models, ApiKeys keys, TraceServerOptions? options = null)
    {
        options ??= new TraceServerOptions();
        if (models.Count == 0) throw new SharpLensException("A server needs at least one model to serve.");
        if (keys.Count == 0) throw new SharpLensException("A server needs at least one API key; give a keys file.");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(options.Url);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBytes);
        var app = builder.Build();
        TraceServer? server = null;
        var workers = models.ToDictionary(m => m.Key, m => new ModelWorker(m.Key, m.Value, options, job => server!.Finished(job)));
        server = new TraceServer(app, workers, keys, options);
        app.MapGet("/v1/models", server.Models);
        app.MapPost("/v1/plans", server.Plans);
        await app.StartAsync();
        return server;
    }

    async Task Models(HttpContext http)
    {
        if (Authenticate(http) is null) { await Refuse(http, 401, "Missing or unknown API key: send 'Authorization: Bearer <key>'."); return; }
        var list = new ModelList { Models = [.. _workers.Values.Select(w => w.Layout)] };
        http.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(http.Response.Body, list, RemoteJsonContext.Default.ModelList);
    }

    async Task Plans(HttpContext http)
    {
        var user = Authenticate(http);
        if (user is null) { await Refuse(http, 401, "Missing or unknown API key: send 'Authorization: Bearer <key>'."); return; }
        if (Admit(user) is { } quota) { await Refuse(http, 429, quota); return; }
        bool queued = false;
        try
        {
            TracePlan plan;
            ModelWorker worker;
            try
            {
                string body;
                using (var reader = new StreamReader(http.Request.Body)) body = await reader.ReadToEndAsync(http.RequestAborted);
                plan = TracePlanJson.Parse(body, "request body");
                worker = plan.Model is null
                    ? _workers.Count == 1 ? _workers.Values.First() : throw new PlanValidationException($"model: this server serves {string.Join(", ", _workers.Keys)}; say which in \"model\".")
                    : _workers.GetValueOrDefault(plan.Model) ?? throw new PlanValidationException($"model: this server does not serve '{plan.Model}'; it serves {string.Join(", ", _workers.Keys)}.");
                PlanValidator.Validate(plan, worker.Layout, _options.Limits); // before anything is queued or run
            }
            catch (BadHttpRequestException e) { await Refuse(http, e.StatusCode, $"The request was refused: {e.Message}"); return; }
            catch (PlanValidationException e) { await Refuse(http, 400, e.Message); return; }

            var job = new ModelWorker.Job(plan, user, http.RequestAborted);
            if (!worker.TryEnqueue(job, out int position)) { await Refuse(http, 503, $"The queue for '{worker.Name}' is full ({_options.MaxQueueLength} runs); try again later."); return; }
            queued = true;
            http.Response.ContentType = "application/x-ndjson";
            await Write(http, new RunEvent { Event = "queued", Position = position });
            await foreach (var e in job.Events.Reader.ReadAllAsync(http.RequestAborted)) await Write(http, e);
        }
        catch (OperationCanceledException) { } // the client went away; the worker sees the same token
        finally
        {
            if (!queued) Release(user);
        }
    }

    static async Task Write(HttpContext http, RunEvent e)
    {
        await JsonSerializer.SerializeAsync(http.Response.Body, e, RemoteJsonContext.Default.RunEvent, http.RequestAborted);
        await http.Response.Body.WriteAsync("\n"u8.ToArray(), http.RequestAborted);
        await http.Response.Body.FlushAsync(http.RequestAborted);
    }

    static async Task Refuse(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(http.Response.Body, new ErrorBody { Error = message }, RemoteJsonContext.Default.ErrorBody);
    }

    ApiKey? Authenticate(HttpContext http)
    {
        string? header = http.Request.Headers.Authorization;
        string? key = header is not null && header.StartsWith("Bearer ", StringComparison.Ordinal) ? header[7..].Trim() : http.Request.Headers["X-Api-Key"];
        return _keys.Find(key);
    }

    /// <summary>Counts a submission against the user's quotas; the refusal message when over one.</summary>
    string? Admit(ApiKey user)
    {
        lock (_inFlight)
        {
            var now = DateTime.UtcNow;
            if (!_recent.TryGetValue(user.User, out var recent)) _recent[user.User] = recent = new Queue<DateTime>();
            while (recent.Count > 0 && now - recent.Peek() > TimeSpan.FromMinutes(1)) recent.Dequeue();
            if (recent.Count >= user.RunsPerMinute)
                return $"User '{user.User}' is over quota: {user.RunsPerMinute} runs per minute. Wait {Math.Ceiling((TimeSpan.FromMinutes(1) - (now - recent.Peek())).TotalSeconds)} s.";
            int inFlight = _inFlight.GetValueOrDefault(user.User);
            if (inFlight >= user.MaxQueued)
                return $"User '{user.User}' is over quota: {inFlight} runs queued or running, at most {user.MaxQueued} at once. Wait for one to finish.";
            recent.Enqueue(now);
            _inFlight[user.User] = inFlight + 1;
            return null;
        }
    }

    void Release(ApiKey user)
    {
        lock (_inFlight) _inFlight[user.User] = Math.Max(0, _inFlight.GetValueOrDefault(user.User) - 1);
    }

    void Finished(ModelWorker.Job job) => Release(job.User);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        foreach (var w in _workers.Values) w.Dispose();
        await _app.DisposeAsync();
    }
}
