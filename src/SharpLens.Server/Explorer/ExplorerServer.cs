using System.Net;
using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SharpLens.Server.Explorer;

/// <summary>
/// SharpLens Explorer: a local web app over one loaded model (ASP.NET Core on Kestrel). The pages (one HTML file with
/// its script and style, served from this assembly: nothing from a CDN) call the JSON API under <c>/api/</c>, which
/// scripts can call too. Every request passes <see cref="ExplorerSecurity"/> first; heavy work runs one job at a time
/// per model (<see cref="ModelLane"/>); long sweeps run as background jobs with progress as server-sent events.
/// <code>
/// await using var server = await ExplorerServer.StartAsync(new ExplorerModel("induction", decoder: model));
/// Console.WriteLine(server.Url); // http://127.0.0.1:PORT/?token=…
/// </code>
/// </summary>
public sealed partial class ExplorerServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly ExplorerModel _model;
    readonly ExplorerOptions _options;
    readonly ExplorerJobs _jobs;
    int _port;

    ExplorerServer(WebApplication app, ExplorerModel model, ExplorerOptions options, string token) =>
        (_app, _model, _options, Token, _jobs) = (app, model, options, token, new ExplorerJobs(model, options.KeptJobs));

    /// <summary>The per-run access token every request must carry.</summary>
    public string Token { get; }
    /// <summary>Where it listens, e.g. http://127.0.0.1:41234/.</summary>
    public Uri Address => new($"http://{HostForUrl(_options.Host)}:{_port}/");
    /// <summary>The URL to open: the address with the token, which the first visit turns into a cookie.</summary>
    public Uri Url => new(Address, $"?token={Token}");
    public ExplorerModel Model => _model;
    /// <summary>Fires when the server is asked to stop (SIGTERM, Ctrl+C through the host, or <see cref="DisposeAsync"/>).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Whether <paramref name="host"/> is a loopback address or name (127.0.0.0/8, ::1, localhost).</summary>
    public static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    /// <summary>
    /// Builds the app and starts listening. A host that is not loopback is refused unless <paramref name="allowRemote"/>
    /// (the CLI's explicit <c>--host</c>): the token then is all that stands between the network and the model.
    /// </summary>
    public static async Task<ExplorerServer> StartAsync(ExplorerModel model, ExplorerOptions? options = null, bool allowRemote = false)
    {
        options ??= new ExplorerOptions();
        if (!IsLoopback(options.Host) && !allowRemote)
            throw new SharpLensException($"The Explorer binds loopback only (127.0.0.1); '{options.Host}' would expose the model to the network. Name it explicitly with --host {options.Host} if that is what you want.");
        if (options.Port is < 0 or > 65535) throw new ArgumentException($"--port {options.Port} is not a TCP port (0 picks a free one; else 1–65535).", "--port");
        string token = options.Token ?? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        if (token.Length < 16) throw new ArgumentException("The Explorer's token must be at least 16 characters.", nameof(options));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://{HostForUrl(options.Host)}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes * 4; // a backstop; ReadJson refuses past MaxBodyBytes with a clear 400
            k.Limits.MaxRequestHeadersTotalSize = 32 << 10;
        });
        var app = builder.Build();
        var server = new ExplorerServer(app, model, options, token);
        var hosts = new List<string> { "127.0.0.1", "localhost", "[::1]" };
        if (!IsLoopback(options.Host)) hosts.Add(HostForUrl(options.Host));
        var security = new ExplorerSecurity(token, () => server._port, hosts);
        app.Use((http, next) => server.Guard(http, () => security.Gate(http, next))); // before routing: nothing is matched for a refused request
        app.UseRouting();
        server.Map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server._port = new Uri(address.Replace("*", "localhost", StringComparison.Ordinal)).Port;
        return server;
    }

    static string HostForUrl(string host) => IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{host}]" : host;

    /// <summary>Any failure becomes a JSON error with a message; a stack trace never leaves the process.</summary>
    async Task Guard(HttpContext http, Func<Task> next)
    {
        try { await next(); }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested) { } // the client went away
        catch (Exception e)
        {
            var (status, message) = ExplorerErrors.Classify(e);
            if (status >= 500) Console.Error.WriteLine($"explore: {http.Request.Method} {http.Request.Path}: {e}");
            if (!http.Response.HasStarted) await Refuse(http, status, message);
        }
    }

    internal static async Task Refuse(HttpContext http, int status, string message)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(http.Response.Body, new ErrorAnswer(message), ExplorerJsonContext.Default.ErrorAnswer);
    }

    /// <summary>Reads a JSON body of at most <see cref="ExplorerOptions.MaxBodyBytes"/>: a larger one is a 400 that says the limit.</summary>
    async Task<T> ReadJson<T>(HttpContext http, JsonTypeInfo<T> type) where T : new()
    {
        long max = _options.MaxBodyBytes;
        if (http.Request.ContentLength is long declared && declared > max)
            throw new ExplorerRequestException($"The request body is {declared} bytes; the limit is {max} bytes. Send a shorter prompt.");
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
        {
            if (buffer.Length + read > max) throw new ExplorerRequestException($"The request body is over the limit of {max} bytes. Send a shorter prompt.");
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0) return new T();
        return JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type) ?? new T();
    }

    static async Task WriteJson<T>(HttpContext http, T value, JsonTypeInfo<T> type)
    {
        http.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(http.Response.Body, value, type, http.RequestAborted);
    }

    /// <summary>An asset compiled into this assembly (Explorer/Assets).</summary>
    static byte[] Asset(string name)
    {
        using var stream = typeof(ExplorerServer).Assembly.GetManifestResourceStream($"explorer/{name}")
            ?? throw new SharpLensInternalException($"The Explorer asset '{name}' is missing from {typeof(ExplorerServer).Assembly.GetName().Name}.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    static readonly Lazy<byte[]> IndexHtml = new(() => Asset("index.html")), AppJs = new(() => Asset("app.js")),
        AppCss = new(() => Asset("app.css")), OpenApi = new(() => Asset("openapi.json"));

    static RequestDelegate Serve(Lazy<byte[]> content, string type, bool page = false) => async http =>
    {
        http.Response.ContentType = type;
        http.Response.Headers.CacheControl = "no-store";
        if (page) http.Response.Headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; connect-src 'self'";
        await http.Response.Body.WriteAsync(content.Value, http.RequestAborted);
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var job in _jobs.Recent) _jobs.Find(job.Id)?.Cancellation.Cancel();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
