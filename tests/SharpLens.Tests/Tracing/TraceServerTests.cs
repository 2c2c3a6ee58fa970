using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using SharpLens.Models;
using SharpLens.Server;
using SharpLens.Tracing;
using static TorchSharp.torch;

namespace SharpLens.Tests.Tracing;

/// <summary>A SharpLens server on loopback (port 0), one small model, two API keys: alice's roomy, bob's quota 1 run per minute.</summary>
public sealed class TraceServerFixture : IAsyncLifetime
{
    public const string Alice = "alice-key-0123456789", Bob = "bob-key-0123456789ab";
    public HookedTransformer Model { get; } = TestModels.RandomModel(TestModels.Tiny() with { NCtx = 600 });
    /// <summary>Wide enough that its plan below takes seconds anywhere, so the 300 ms limit surely stops it.</summary>
    public HookedTransformer Wide { get; } = new(TestModels.Tiny() with { DModel = 512, DHead = 64, NHeads = 8, DMlp = 2048, NLayers = 4, NCtx = 320, ModelName = "wide" });
    public TraceServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await TraceServer.StartAsync(new Dictionary<string, TraceTarget> { ["tiny"] = TraceTarget.Of(Model), ["wide"] = TraceTarget.Of(Wide) },
            new ApiKeys([new ApiKey { Key = Alice, User = "alice", MaxQueued = 32 }, new ApiKey { Key = Bob, User = "bob", RunsPerMinute = 1 }]),
            new TraceServerOptions { Url = "http://127.0.0.1:0", MaxRunTime = TimeSpan.FromMilliseconds(300) });

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Model.Dispose();
        Wide.Dispose();
    }
}

public sealed class TraceServerTests(TraceServerFixture f) : IClassFixture<TraceServerFixture>
{
    RemoteModel Connect(string key = TraceServerFixture.Alice) => RemoteModel.Connect(f.Server.Address, key, "tiny");

    static Tensor Tokens(long seed, long pos = 8) => TestModels.RandomTokens(1, pos, 50, seed);

    [Fact]
    public void The_same_trace_runs_remotely_and_locally_with_equal_results()
    {
        using var remote = Connect();
        Assert.Equal(2, remote.Layout.NLayers);
        var tokens = Tokens(1);
        Saved Build(Tracer t)
        {
            t.Blocks[0].Output[.., ^1] *= 2;
            return t.Blocks[1].Attn.Pattern.Save("pattern");
        }
        var local = f.Model.Trace(tokens);
        var l = Build(local);
        var far = f.Model.Trace(tokens, remote: remote); // nnsight's remote=True: same code, run on the server
        var r = Build(far);
        var output = far.Output.Save("logits");
        using var localResult = local.Run();
        using var remoteResult = far.Run();
        Assert.Equal(0, Equal.MaxDiff(l.Value, r.Value));
        Assert.Equal([1L, 8, 50], output.Value.shape);
    }

    [Fact]
    public void Results_stream_back_as_ndjson_events()
    {
        using var http = new HttpClient { BaseAddress = f.Server.Address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TraceServerFixture.Alice);
        var plan = """
            { "sharplens_plan": 1, "model": "tiny", "invokes": [{ "tokens": [[1, 2, 3]] }], "generate": { "max_new_tokens": 2 }, "ops": [
              { "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "steps": "all" },
              { "op": "save", "name": "h", "value": { "ref": "h" } } ] }
            """;
        using var response = http.Send(new HttpRequestMessage(HttpMethod.Post, "v1/plans") { Content = new StringContent(plan, Encoding.UTF8, "application/json") },
            HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
        var events = new StreamReader(response.Content.ReadAsStream()).ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonSerializer.Deserialize(line, RemoteJsonContext.Default.RunEvent)!).ToList();
        Assert.Equal(["queued", "running", "tensor", "tensor", "tensor", "done"], events.Select(e => e.Event));
        Assert.Equal([0, 1], events.Where(e => e.Name == "h").Select(e => e.Step!.Value));
        Assert.Equal([1L, 5], events.Single(e => e.Name == "generated").Shape);
    }

    [Fact]
    public void An_unknown_key_is_refused_and_a_user_over_quota_is_refused_with_429()
    {
        var bad = Assert.Throws<RemoteTraceException>(() => RemoteModel.Connect(f.Server.Address, "not-a-key-at-all-000", "tiny"));
        Assert.Equal(401, bad.StatusCode);

        using var bob = Connect(TraceServerFixture.Bob);
        var first = bob.Trace(Tokens(2));
        first.Output.Save();
        using (first.Run()) { }
        var second = bob.Trace(Tokens(3));
        second.Output.Save();
        var e = Assert.Throws<RemoteTraceException>(() => second.Run());
        Assert.Equal(429, e.StatusCode);
        Assert.Contains("bob", e.Message);
        Assert.Contains("quota", e.Message);

        // Alice is not affected by bob's quota.
        using var alice = Connect();
        var t = alice.Trace(Tokens(3));
        t.Output.Save();
        using (t.Run()) { }
    }

    [Fact]
    public void A_plan_past_the_time_limit_is_stopped_and_its_memory_freed()
    {
        using var wide = RemoteModel.Connect(f.Server.Address, TraceServerFixture.Alice, "wide");
        var t = wide.Trace(TestModels.RandomTokens(32, 64, 50, 4)).Generate(250); // ≈ 50 GFLOP for the prompt, 1.6 per step
        for (int l = 0; l < 4; l++) t.AllSteps.Blocks[l].Output[.., ^1] *= 1.0;
        t.AllSteps.Blocks[3].Output[.., ^1].Save("every step");
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<RemoteTraceException>(() => t.Run());
        Assert.Equal(408, e.StatusCode);
        Assert.Contains("time limit", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"stopping took {clock.Elapsed}");
        var (_, timedOut, before, after) = f.Server.Statistics["wide"];
        Assert.Equal(1, timedOut);
        Assert.Equal(before, after); // every tensor the run made on the worker thread was freed

        using var remote = Connect();
        var next = remote.Trace(Tokens(5));
        var o = next.Output.Save();
        using (next.Run()) Assert.Equal([1L, 8, 50], o.Value.shape);
    }

    [Theory]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1]] }], "constants": { "c": { "shape": [4000000000, 4000000000], "data": [] } }, "ops": [] }""", "constants.c.shape")]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1]] }], "ops": [{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post" }, { "op": "save", "name": "x", "value": { "op": "eval", "args": [{ "ref": "h" }] } }] }""", "unknown operation 'eval'")]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1]] }], "ops": [{ "op": "python", "hook": "blocks.0.hook_resid_post" }] }""", "unknown op 'python'")]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1]] }], "generate": { "max_new_tokens": 100000 }, "ops": [] }""", "generate.max_new_tokens")]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1, 2]] }], "ops": [{ "op": "read", "id": "h", "hook": "blocks.9.hook_resid_post" }] }""", "blocks.9.hook_resid_post")]
    [InlineData("""{ "sharplens_plan": 1, "invokes": [ """, "not a valid plan")]
    public void Malformed_and_hostile_plans_are_refused_before_running(string plan, string expected)
    {
        long completed = f.Server.Statistics["tiny"].Completed;
        var e = Assert.Throws<RemoteTraceException>(() => Post(plan));
        Assert.Equal(400, e.StatusCode);
        Assert.Contains(expected, e.Message);
        Assert.Equal(completed, f.Server.Statistics["tiny"].Completed);
    }

    [Fact]
    public void A_deeply_nested_expression_is_refused_before_running()
    {
        string expr = """{ "ref": "h" }""";
        for (int i = 0; i < 200; i++) expr = $$"""{ "op": "neg", "args": [{{expr}}] }""";
        var e = Assert.Throws<RemoteTraceException>(() => Post($$"""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1]] }], "ops": [{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post" }, { "op": "save", "name": "x", "value": {{expr}} }] }"""));
        Assert.Equal(400, e.StatusCode);
    }

    void Post(string plan)
    {
        using var http = new HttpClient { BaseAddress = f.Server.Address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", TraceServerFixture.Alice);
        plan = "{ \"model\": \"tiny\", " + plan.TrimStart()[1..]; // the server holds two models
        using var response = http.Send(new HttpRequestMessage(HttpMethod.Post, "v1/plans") { Content = new StringContent(plan, Encoding.UTF8, "application/json") });
        var body = response.Content.ReadAsStringAsync().Result;
        if (!response.IsSuccessStatusCode)
            throw new RemoteTraceException(JsonSerializer.Deserialize(body, RemoteJsonContext.Default.ErrorBody)!.Error, (int)response.StatusCode);
    }

    [Fact]
    public async Task Twenty_concurrent_clients_are_each_served_their_own_results()
    {
        var expected = Enumerable.Range(0, 20).Select(i =>
        {
            var t = f.Model.Trace(Tokens(100 + i));
            t.Blocks[0].Output[.., 2] *= 0.5;
            t.Output[.., ^1].Save("last");
            using var r = t.Run();
            return r["last"].clone();
        }).ToList();
        var clients = Enumerable.Range(0, 20).Select(i => Task.Run(() =>
        {
            using var remote = Connect();
            var t = remote.Trace(Tokens(100 + i));
            t.Blocks[0].Output[.., 2] *= 0.5;
            t.Output[.., ^1].Save("last");
            using var r = t.Run();
            return r["last"].clone();
        })).ToList();
        var results = await Task.WhenAll(clients);
        for (int i = 0; i < 20; i++) Assert.Equal(0, Equal.MaxDiff(results[i], expected[i]));
    }
}
