using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// A model served by <c>sharplens serve</c>, traced from here: <c>RemoteModel.Connect(url, key, "induction").Trace(tokens)</c>
/// builds the same trace as a local model, and <c>Run</c> sends its plan and reads the results as they stream back.
/// Or pass it to a local model's <c>Trace(tokens, remote: ...)</c>.
/// </summary>
public sealed class RemoteModel : ITraceBackend, IDisposable
{
    readonly HttpClient _http;
    readonly bool _ownsClient;

    public string ModelName { get; }
    public TraceLayout Layout { get; }

    RemoteModel(HttpClient http, bool owns, TraceLayout layout)
    {
        (_http, _ownsClient, Layout) = (http, owns, layout);
        ModelName = layout.Name;
    }

    /// <summary>Connects to a server and reads the layout of <paramref name="model"/> (the only model when null).</summary>
    public static RemoteModel Connect(Uri server, string apiKey, string? model = null, HttpClient? http = null, TimeSpan? timeout = null)
    {
        bool owns = http is null;
        http ??= new HttpClient { BaseAddress = server, Timeout = timeout ?? TimeSpan.FromMinutes(10) };
        http.BaseAddress ??= server;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        var models = Send(http, new HttpRequestMessage(HttpMethod.Get, "v1/models"), r =>
            JsonSerializer.Deserialize(r.Content.ReadAsStream(), RemoteJsonContext.Default.ModelList)!);
        var layout = model is null
            ? models.Models.Count == 1 ? models.Models[0] : throw new PlanValidationException($"The server at {server} serves {models.Models.Count} models ({string.Join(", ", models.Models.Select(m => m.Name))}); say which.")
            : models.Models.FirstOrDefault(m => m.Name == model)
              ?? throw new PlanValidationException($"The server at {server} does not serve '{model}'; it serves {string.Join(", ", models.Models.Select(m => m.Name))}.");
        return new RemoteModel(http, owns, layout);
    }

    /// <summary>Starts a trace on the served model; with tokens, they are its first invoke.</summary>
    public Tracer Trace(Tensor? tokens = null)
    {
        var tracer = new Tracer(this);
        if (tokens is not null) tracer.Invoke(tokens);
        return tracer;
    }

    /// <summary>Runs a plan on the server and returns what it saved; a refusal or failure there is a <see cref="RemoteTraceException"/>.</summary>
    public TraceResult Run(TracePlan plan, CancellationToken cancel = default)
    {
        plan = plan with { Model = ModelName };
        var body = JsonSerializer.Serialize(plan, TracePlanJsonContext.Default.TracePlan);
        var request = new HttpRequestMessage(HttpMethod.Post, "v1/plans") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        return Send(_http, request, response =>
        {
            var saved = new Dictionary<string, List<(int, Tensor)>>();
            Tensor? generated = null;
            try
            {
                using var reader = new StreamReader(response.Content.ReadAsStream(cancel));
                while (reader.ReadLine() is { } line)
                {
                    if (line.Length == 0) continue;
                    var e = JsonSerializer.Deserialize(line, RemoteJsonContext.Default.RunEvent)!;
                    switch (e.Event)
                    {
                        case "tensor" when e.Name == "generated":
                            generated = e.ToTensor().DetachFromDisposeScope();
                            break;
                        case "tensor":
                            if (!saved.TryGetValue(e.Name!, out var list)) saved[e.Name!] = list = [];
                            list.Add((e.Step ?? 0, e.ToTensor().DetachFromDisposeScope()));
                            break;
                        case "error":
                            throw new RemoteTraceException($"The server stopped the run: {e.Message}", e.Status ?? 500);
                        case "done":
                            return new TraceResult(saved, generated, e.Stopped ?? false);
                    }
                }
                throw new RemoteTraceException("The server closed the stream before the run was done.", 502);
            }
            catch
            {
                foreach (var l in saved.Values) foreach (var (_, t) in l) t.Dispose();
                generated?.Dispose();
                throw;
            }
        }, HttpCompletionOption.ResponseHeadersRead, cancel);
    }

    static T Send<T>(HttpClient http, HttpRequestMessage request, Func<HttpResponseMessage, T> read,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, CancellationToken cancel = default)
    {
        HttpResponseMessage response;
        try { response = http.Send(request, completion, cancel); }
        catch (HttpRequestException e) { throw new RemoteTraceException($"Cannot reach the SharpLens server at {http.BaseAddress}: {e.Message}", 503); }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                string text = new StreamReader(response.Content.ReadAsStream(cancel)).ReadToEnd();
                string message;
                try { message = JsonSerializer.Deserialize(text, RemoteJsonContext.Default.ErrorBody)?.Error ?? text; }
                catch (JsonException) { message = text; }
                throw new RemoteTraceException($"The server refused the request ({(int)response.StatusCode}): {message}", (int)response.StatusCode);
            }
            return read(response);
        }
    }

    public void Dispose()
    {
        if (_ownsClient) _http.Dispose();
    }
}
