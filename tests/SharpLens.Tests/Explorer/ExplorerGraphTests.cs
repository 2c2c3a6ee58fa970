using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SharpLens.Attribution;
using SharpLens.Models;
using SharpLens.Server.Explorer;
using SharpLens.Tests.Attribution;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Explorer;

/// <summary>
/// A model with MLPs behind the Explorer, for the Graph page: a random 3-layer model and a random per-layer transcoder
/// set, saved in circuit-tracer's layout and loaded back as `sharplens explore --transcoders DIR` loads it. A gate on
/// blocks.0.hook_resid_pre can hold a job in its forward pass, so a test decides when it goes on (nothing depends on
/// how fast the machine is).
/// </summary>
public sealed class GraphExplorerFixture : IAsyncLifetime
{
    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"sharplens-explorer-graph-{Guid.NewGuid():N}");
    public HookedTransformer Model { get; private set; } = null!;
    public TranscoderSet Transcoders { get; private set; } = null!;
    public ReplacementModel Replacement { get; private set; } = null!;
    public ExplorerModel Explorer { get; private set; } = null!;
    public ExplorerServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public static readonly long[] Prompt = [5, 17, 3, 29, 11, 8];

    public async Task InitializeAsync()
    {
        Model = TestModels.RandomModel(TestModels.Tiny() with { NLayers = 3, DVocab = 40 }, seed: 11);
        using (var made = RandomTranscoders.Make(3, 32, 12, crossLayer: false)) TranscoderFiles.Save(made, Folder);
        Transcoders = TranscoderFiles.Load(Folder);
        Replacement = new ReplacementModel(Model, Transcoders);
        Explorer = new ExplorerModel("random-mlp", decoder: Model, graphModel: Replacement);
        Server = await ExplorerServer.StartAsync(Explorer);
        Client = new HttpClient { BaseAddress = Server.Address };
        Client.DefaultRequestHeaders.Add("X-Explorer-Token", Server.Token);
    }

    /// <summary>Holds every forward pass at blocks.0 until <see cref="Gate.Release"/>; dispose to remove it.</summary>
    public Gate Hold() => new(Model);

    public sealed class Gate : IDisposable
    {
        readonly ManualResetEventSlim _entered = new(), _release = new();
        readonly IDisposable _hook;
        public Gate(HookedTransformer model) => _hook = model.AddHook("blocks.0.hook_resid_pre", (_, _) => { _entered.Set(); _release.Wait(); return null; });
        public bool WaitEntered() => _entered.Wait(TimeSpan.FromSeconds(60));
        public void Release() => _release.Set();
        public void Dispose() { _release.Set(); _hook.Dispose(); }
    }

    public async Task<JsonNode> Send(HttpMethod method, string path, string? json = null, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var request = new HttpRequestMessage(method, path) { Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await Client.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    /// <summary>The job's server-sent events until "done": (event, data) pairs.</summary>
    public async Task<List<(string Event, JsonNode Data)>> Events(string id)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var stream = await Client.GetStreamAsync($"/api/jobs/{id}/events", cts.Token);
        using var reader = new StreamReader(stream);
        var events = new List<(string, JsonNode)>();
        string? name = null;
        while (await reader.ReadLineAsync(cts.Token) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                events.Add((name!, JsonNode.Parse(line[6..])!));
                if (name == "done") break;
            }
        }
        return events;
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Explorer.Dispose();
        Transcoders.Dispose();
        Model.Dispose();
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}

/// <summary>The Graph page's API on a model with MLPs: the job's graph.json is the library's, progress streams, a cancel
/// stops it and frees what it made.</summary>
public sealed class ExplorerGraphTests(GraphExplorerFixture f) : IClassFixture<GraphExplorerFixture>
{
    static string Request(int batch) => $"{{\"tokens\": [{string.Join(", ", GraphExplorerFixture.Prompt)}], \"batch_size\": {batch}, \"max_feature_nodes\": 40}}";

    /// <summary>What `sharplens graph` writes for the same prompt and options.</summary>
    string LibraryGraphJson(string slug, int batch)
    {
        string dir = Path.Combine(f.Folder, "library-" + slug);
        using var scope = NewDisposeScope();
        var summary = GraphFiles.AttributeAndWrite(f.Replacement, tensor(GraphExplorerFixture.Prompt).unsqueeze(0), dir,
            new AttributionOptions { BatchSize = batch, MaxFeatureNodes = 40 }, new GraphFileOptions { Slug = slug, WriteViewer = false });
        return File.ReadAllText(summary.JsonPath);
    }

    [Fact]
    public async Task A_graph_job_streams_progress_and_its_graph_json_is_the_librarys()
    {
        JsonNode started;
        List<(string Event, JsonNode Data)> events;
        using (var gate = f.Hold())
        {
            started = await f.Send(HttpMethod.Post, "/api/jobs/graph", Request(8), HttpStatusCode.Accepted);
            Assert.True(gate.WaitEntered(), "the graph job never ran its forward pass");
            var watching = f.Events(started["job"]!["id"]!.GetValue<string>());
            // The job is held in its forward pass: the stream has said "running" before the gate opens.
            var status = await f.Send(HttpMethod.Get, "/api/status");
            Assert.True(status["busy"]!.GetValue<bool>());
            Assert.Equal("graph", status["running"]!.GetValue<string>());
            gate.Release();
            events = await watching;
        }
        string id = started["job"]!["id"]!.GetValue<string>();
        Assert.Equal("progress", events[0].Event);
        Assert.Equal("running", events[0].Data["state"]!.GetValue<string>());
        Assert.Equal("done", events[^1].Event);
        var final = events[^1].Data;
        Assert.Equal("done", final["state"]!.GetValue<string>());

        string expected = LibraryGraphJson($"explore-{id}", 8);
        using (var response = await f.Client.GetAsync($"/api/jobs/{id}/graph.json"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(expected, await response.Content.ReadAsStringAsync());
        }
        // Progress counted the attribution's rows: one per logit target and per visited feature, as the library's graph has.
        var graph = JsonNode.Parse(expected)!;
        int logits = graph["nodes"]!.AsArray().Count(n => n!["feature_type"]!.GetValue<string>() == "logit");
        var answer = await f.Send(HttpMethod.Get, $"/api/jobs/{id}");
        int features = answer["graph"]!["features"]!.GetValue<int>();
        Assert.Equal(40, features); // max_feature_nodes reached the attribution
        Assert.Equal(features + logits, final["total"]!.GetValue<int>());
        Assert.Equal(final["total"]!.GetValue<int>(), final["done"]!.GetValue<int>());
        Assert.Equal(graph["nodes"]!.AsArray().Count, answer["graph"]!["kept_nodes"]!.GetValue<int>());
        Assert.Equal(graph["links"]!.AsArray().Count, answer["graph"]!["kept_links"]!.GetValue<int>());
        // Everything the work made was freed with its dispose scope.
        Assert.Equal(final["live_tensors_before"]!.GetValue<long>(), final["live_tensors_after"]!.GetValue<long>());

        using var viewer = await f.Client.GetAsync(answer["graph"]!["viewer_url"]!.GetValue<string>());
        Assert.Equal("text/html; charset=utf-8", viewer.Content.Headers.ContentType!.ToString());
        string html = await viewer.Content.ReadAsStringAsync();
        Assert.Contains($"\"slug\":\"explore-{id}\"", html.Replace(" ", ""));
    }

    [Fact]
    public async Task A_cancelled_graph_job_stops_frees_its_memory_and_leaves_the_model_as_it_was()
    {
        string id;
        List<(string Event, JsonNode Data)> events;
        using (var gate = f.Hold())
        {
            var started = await f.Send(HttpMethod.Post, "/api/jobs/graph", Request(1), HttpStatusCode.Accepted);
            id = started["job"]!["id"]!.GetValue<string>();
            Assert.True(gate.WaitEntered(), "the graph job never ran its forward pass");
            var cancelled = await f.Send(HttpMethod.Delete, $"/api/jobs/{id}");
            Assert.Equal(id, cancelled["job"]!["id"]!.GetValue<string>());
            gate.Release(); // the next progress report, after the first backward pass, sees the cancel and stops there
            events = await f.Events(id); // the hook goes only once the job has stopped
        }
        var final = events[^1].Data;
        Assert.Equal("cancelled", final["state"]!.GetValue<string>());
        Assert.InRange(final["done"]!.GetValue<int>(), 0, 1);
        Assert.True(final["total"]!.GetValue<int>() > 10, $"total {final["total"]}");
        Assert.Equal(final["live_tensors_before"]!.GetValue<long>(), final["live_tensors_after"]!.GetValue<long>());
        var status = await f.Send(HttpMethod.Get, "/api/status");
        Assert.False(status["busy"]!.GetValue<bool>());
        await f.Send(HttpMethod.Get, $"/api/jobs/{id}/graph.json", expected: HttpStatusCode.NotFound);
        // No hook or freeze of the replacement model was left behind: the next graph is the library's again.
        var again = await f.Send(HttpMethod.Post, "/api/jobs/graph", Request(16), HttpStatusCode.Accepted);
        string next = again["job"]!["id"]!.GetValue<string>();
        Assert.Equal("done", (await f.Events(next))[^1].Data["state"]!.GetValue<string>());
        using var response = await f.Client.GetAsync($"/api/jobs/{next}/graph.json");
        Assert.Equal(LibraryGraphJson($"explore-{next}", 16), await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Graph_options_are_checked_before_a_job_starts_and_the_model_info_describes_the_transcoders()
    {
        var bad = await f.Send(HttpMethod.Post, "/api/jobs/graph", "{\"tokens\": [1, 2, 3], \"node_threshold\": 1.5}", HttpStatusCode.BadRequest);
        Assert.Contains("node-threshold", bad["error"]!.GetValue<string>());
        bad = await f.Send(HttpMethod.Post, "/api/jobs/graph", "{\"tokens\": [1, 2, 3], \"batch_size\": 0}", HttpStatusCode.BadRequest);
        Assert.Contains("\"batch_size\"", bad["error"]!.GetValue<string>());
        var info = await f.Send(HttpMethod.Get, "/api/model");
        Assert.True(info["has_transcoders"]!.GetValue<bool>());
        Assert.Null(info["graph_note"]);
        Assert.Contains("3 layers × 12 features", info["transcoders"]!.GetValue<string>());
        // This model has no tokenizer: its feature pages fall back to random sequences and say why.
        Assert.Equal("random", info["corpus_source"]!.GetValue<string>());
        Assert.Contains("has no tokenizer", info["corpus"]!.GetValue<string>());
    }
}
