using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Organisms;
using SharpLens.Saes;
using SharpLens.Saes.Dashboards;
using SharpLens.Saes.Data;
using SharpLens.Server.Explorer;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using SharpLens.Tests.Organisms;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Explorer;

/// <summary>A quick induction organism behind a running Explorer, with a random SAE at blocks.1.hook_resid_pre.</summary>
public sealed class ExplorerFixture : IAsyncLifetime
{
    /// <summary>The induction organism's recipe, cut to a few hundred steps: these tests compare the API with the
    /// library on the same model, which need not be fully trained (a few seconds on a quiet CPU).</summary>
    public static readonly InductionSettings Settings = SmallInductionOrganism.Settings with { Vocab = 48, HalfLength = 10, Steps = 300, BatchSize = 16 };
    public string CacheRoot { get; } = Path.Combine(Path.GetTempPath(), $"sharplens-explorer-test-{Guid.NewGuid():N}");
    public InductionOrganism Organism { get; private set; } = null!;
    public HookedTransformer Model => Organism.Model;
    public Sae Sae { get; private set; } = null!;
    public ExplorerModel Explorer { get; private set; } = null!;
    public ExplorerServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;
    public const string SaeHook = "blocks.1.hook_resid_pre";
    public static readonly ExplorerOptions Options = new() { MaxPromptChars = 400, MaxBodyBytes = 4096 };

    public async Task InitializeAsync()
    {
        Organism = InductionOrganism.TrainOrLoad(Settings, CacheRoot);
        Sae = new Sae(new SaeConfig(SaeArchitecture.Standard, Model.Config.DModel, 48) { Metadata = new() { HookName = SaeHook } }, seed: 3);
        Explorer = new ExplorerModel("small-induction", decoder: Model, saes: [new ExplorerSae("random-sae", Sae, SaeHook)]);
        Server = await ExplorerServer.StartAsync(Explorer, Options);
        Client = new HttpClient { BaseAddress = Server.Address };
        Client.DefaultRequestHeaders.Add("X-Explorer-Token", Server.Token);
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Explorer.Dispose();
        Sae.Dispose();
        Organism.Dispose();
        if (Directory.Exists(CacheRoot)) Directory.Delete(CacheRoot, recursive: true);
    }

    /// <summary>A prompt the organism predicts well: BOS, a random block, the block again but its last token.</summary>
    public long[] Prompt(int seed = 1)
    {
        var rng = new Random(seed);
        var block = Enumerable.Range(0, 8).Select(_ => (long)rng.Next(1, Model.Config.DVocab)).ToArray();
        return [0, .. block, .. block[..^1]];
    }

    public static string Ids(long[] ids) => string.Join(" ", ids);

    public async Task<JsonNode> Post(string path, string json, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await Client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }

    public async Task<JsonNode> Get(string path, HttpStatusCode expected = HttpStatusCode.OK)
    {
        using var response = await Client.GetAsync(path);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(expected == response.StatusCode, $"{path}: {(int)response.StatusCode} {body}");
        return JsonNode.Parse(body)!;
    }
}

public sealed class ExplorerApiTests(ExplorerFixture f, ITestOutputHelper output) : IClassFixture<ExplorerFixture>
{
    static double D(JsonNode? n) => n!.GetValue<double>();
    static long L(JsonNode? n) => n!.GetValue<long>();

    // ---- security ----

    [Theory]
    [InlineData("/")]
    [InlineData("/api/model")]
    [InlineData("/no/such/path")]
    public async Task Without_the_token_every_path_is_401(string path)
    {
        using var bare = new HttpClient { BaseAddress = f.Server.Address };
        using var response = await bare.GetAsync(path);
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Get, path);
        wrong.Headers.Add("X-Explorer-Token", new string('0', 32));
        using var refused = await bare.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Contains("token", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_foreign_Host_header_is_403_even_with_the_token()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/model");
        request.Headers.Host = $"evil.example:{f.Server.Address.Port}";
        using var response = await f.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("DNS rebinding", await response.Content.ReadAsStringAsync());
        using var otherPort = new HttpRequestMessage(HttpMethod.Get, "/api/model");
        otherPort.Headers.Host = $"127.0.0.1:{f.Server.Address.Port + 1}";
        Assert.Equal(HttpStatusCode.Forbidden, (await f.Client.SendAsync(otherPort)).StatusCode);
    }

    [Fact]
    public async Task The_token_in_the_URL_sets_a_cookie_that_works_alone()
    {
        var cookies = new CookieContainer();
        using var handler = new HttpClientHandler { CookieContainer = cookies };
        using var browser = new HttpClient(handler) { BaseAddress = f.Server.Address };
        using var first = await browser.GetAsync($"/?token={f.Server.Token}");
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Contains("SharpLens Explorer", await first.Content.ReadAsStringAsync());
        Assert.Contains("script-src 'self'", first.Headers.GetValues("Content-Security-Policy").Single());
        var cookie = Assert.Single(cookies.GetCookies(f.Server.Address).Cast<Cookie>());
        Assert.True(cookie.HttpOnly);
        using var next = await browser.GetAsync("/api/model"); // no token in the URL now: the cookie carries it
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        foreach (var asset in new[] { "/app.js", "/app.css", "/api/openapi.json" })
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(asset)).StatusCode);
    }

    [Fact]
    public async Task Oversized_prompts_and_bodies_are_a_clear_400()
    {
        string longPrompt = new JsonObject { ["prompt"] = string.Join(" ", Enumerable.Repeat("5", 300)) }.ToJsonString(); // 599 characters
        var longText = await f.Post("/api/prompt", longPrompt, HttpStatusCode.BadRequest);
        Assert.Contains("is 599 characters long; the limit is 400", longText["error"]!.GetValue<string>());
        var tooManyTokens = await f.Post("/api/prompt", new JsonObject { ["tokens"] = new JsonArray([.. Enumerable.Range(0, 100).Select(_ => (JsonNode?)5)]) }.ToJsonString(), HttpStatusCode.BadRequest);
        Assert.Contains($"the limit is {f.Model.Config.NCtx} (the model's context)", tooManyTokens["error"]!.GetValue<string>());
        var hugeBody = await f.Post("/api/prompt", "{\"prompt\": \"0 1\"" + new string(' ', 5000) + "}", HttpStatusCode.BadRequest);
        Assert.Contains("the limit is 4096 bytes", hugeBody["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_requests_name_the_field_and_never_carry_a_stack_trace()
    {
        var cases = new (string Path, string Body, string Says)[]
        {
            ("/api/prompt", "{\"prompt\": \"0 five 9\"}", "'five' is not a token id"),
            ("/api/prompt", "{\"prompt\": \"0 5\", \"colour\": 1}", "colour"),
            ("/api/prompt", "{\"prompt\": \"0 999\"}", "outside the vocabulary"),
            ("/api/prompt", "not json", "not valid JSON"),
            ("/api/attention", "{\"prompt\": \"0 5\", \"layer\": 7}", "\"layer\" 7"),
            ("/api/generate", "{\"prompt\": \"0 5\", \"max_new_tokens\": 1000}", "max_new_tokens"),
            ("/api/jobs/patching", "{\"clean\": \"0 5 9\", \"corrupted\": \"0 5\", \"answer\": \"5\", \"wrong\": \"9\"}", "same length"),
            ("/api/jobs/patching", "{\"clean\": \"0 5 9\", \"corrupted\": \"0 5 8\", \"answer\": \"5\", \"wrong\": \"9\", \"component\": \"mlp_out\"}", "attention-only"),
            ("/api/features", "{\"sae\": 3, \"prompt\": \"0 5\"}", "\"sae\" 3"),
            ("/api/jobs/graph", "{\"prompt\": \"0 5\"}", "--transcoders"),
            ("/api/steer", "{\"prompt\": \"0 5\", \"feature\": 2, \"positive\": \"0 1\", \"negative\": \"0 2\"}", "not both"),
        };
        foreach (var (path, body, says) in cases)
        {
            using var response = await f.Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
            string text = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{path} {body}: {(int)response.StatusCode} {text}");
            string error = JsonNode.Parse(text)!["error"]!.GetValue<string>();
            Assert.Contains(says, error);
            Assert.DoesNotContain(" at SharpLens", text);
            Assert.DoesNotContain(".cs:line", text);
        }
        var missing = await f.Get("/api/jobs/0123456789abcdef", HttpStatusCode.NotFound);
        Assert.Contains("No job", missing["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_non_loopback_host_is_refused_unless_allowed()
    {
        var e = await Assert.ThrowsAsync<SharpLensException>(() => ExplorerServer.StartAsync(f.Explorer, new ExplorerOptions { Host = "0.0.0.0" }));
        Assert.Contains("--host 0.0.0.0", e.Message);
        Assert.True(ExplorerServer.IsLoopback("127.0.0.1") && ExplorerServer.IsLoopback("::1") && ExplorerServer.IsLoopback("localhost"));
        Assert.False(ExplorerServer.IsLoopback("192.168.1.5"));
    }

    // ---- every endpoint, its values against the library's ----

    [Fact]
    public async Task Model_and_status_describe_what_is_loaded()
    {
        var info = await f.Get("/api/model");
        Assert.Equal("decoder", info["kind"]!.GetValue<string>());
        Assert.Equal(f.Model.Config.NLayers, info["n_layers"]!.GetValue<int>());
        Assert.False(info["has_tokenizer"]!.GetValue<bool>());
        Assert.Equal(ExplorerFixture.SaeHook, info["saes"]![0]!["hook"]!.GetValue<string>());
        Assert.Contains("--transcoders", info["graph_note"]!.GetValue<string>());
        var status = await f.Get("/api/status");
        Assert.False(status["busy"]!.GetValue<bool>());
    }

    [Fact]
    public async Task Prompt_gives_the_librarys_loss_and_top_predictions()
    {
        var ids = f.Prompt();
        var answer = await f.Post("/api/prompt", $"{{\"prompt\": \"{ExplorerFixture.Ids(ids)}\", \"top_k\": 3}}");
        var expectedLoss = PerPositionLoss.Compute(f.Model, tensor(ids).unsqueeze(0)); // [pos - 1]
        var loss = answer["loss"]!.AsArray();
        Assert.Null(loss[0]);
        for (int t = 1; t < ids.Length; t++) Assert.Equal(expectedLoss[t - 1], D(loss[t]), 4);
        using var scope = NewDisposeScope();
        var probs = f.Model.Run(tensor(ids).unsqueeze(0))[0].softmax(-1); // [pos, d_vocab]
        for (int p = 0; p < ids.Length; p++)
        {
            var top = answer["top"]![p]!.AsArray();
            Assert.Equal(3, top.Count);
            long best = probs[p].argmax().item<long>();
            Assert.Equal(best, L(top[0]!["token"]));
            Assert.Equal(probs[p, best].item<float>(), D(top[0]!["prob"]), 5);
        }
    }

    [Fact]
    public async Task Generate_equals_the_librarys_generation()
    {
        var ids = f.Prompt(2);
        var answer = await f.Post("/api/generate", $"{{\"tokens\": [{string.Join(",", ids)}], \"max_new_tokens\": 4, \"temperature\": 0.7, \"top_k\": 20, \"seed\": 5}}");
        using var scope = NewDisposeScope();
        var expected = f.Model.Generate(tensor(ids).unsqueeze(0), 4, 0.7, 20, null, 5)[0, ids.Length..].data<long>().ToArray();
        Assert.Equal(expected, answer["new_tokens"]!.AsArray().Select(L).ToArray());
    }

    [Fact]
    public async Task Attention_patterns_equal_the_cached_patterns()
    {
        var ids = f.Prompt(3);
        var answer = await f.Post("/api/attention", $"{{\"prompt\": \"{ExplorerFixture.Ids(ids)}\", \"layer\": 1}}");
        using var scope = NewDisposeScope();
        var (_, cache) = f.Model.RunWithCache(tensor(ids).unsqueeze(0), ["blocks.1.attn.hook_pattern"]);
        using (cache)
        {
            var pattern = cache["blocks.1.attn.hook_pattern"][0]; // [head, dest, src]
            for (int h = 0; h < f.Model.Config.NHeads; h++)
                foreach (var (d, s) in new[] { (ids.Length - 1, 2), (5, 0), (10, 3) })
                    Assert.Equal(pattern[h, d, s].item<float>(), D(answer["pattern"]![h]![d]![s]), 6);
        }
    }

    [Fact]
    public async Task Head_scores_equal_the_detectors()
    {
        var answer = await f.Get("/api/heads");
        var c = f.Model.Config;
        var tokens = HeadDetectors.RepeatedRandomTokens(c, Math.Min(20, (c.NCtx - 1) / 2), 16, new Generator(0));
        var scores = HeadDetectors.ScoreHeads(f.Model, tokens);
        for (int l = 0; l < c.NLayers; l++)
            for (int h = 0; h < c.NHeads; h++)
            {
                Assert.Equal(scores.Induction[l, h], D(answer["induction"]![l]![h]), 9);
                Assert.Equal(scores.PreviousToken[l, h], D(answer["previous_token"]![l]![h]), 9);
            }
    }

    [Fact]
    public async Task Lens_and_dla_equal_the_librarys()
    {
        var ids = f.Prompt(4);
        string prompt = ExplorerFixture.Ids(ids);
        long answerToken = ids[8], wrong = Enumerable.Range(1, 60).First(t => !ids.Contains(t));
        var lens = await f.Post("/api/lens", $"{{\"prompt\": \"{prompt}\", \"answer\": \"{answerToken}\", \"wrong\": \"{wrong}\"}}");
        using var scope = NewDisposeScope();
        using var expected = LogitLens.Run(f.Model, tensor(ids).unsqueeze(0));
        int last = ids.Length - 1;
        for (int r = 0; r < expected.Rows; r++)
        {
            Assert.Equal(Math.Exp(expected.LogProbs[r, 0, last, answerToken].item<float>()), D(lens["answer_prob"]![r]![last]), 5);
            Assert.Equal(expected.TopTokens(r, last, 1)[0].Token, L(lens["top_at_position"]![r]![0]!["token"]));
        }
        var dla = await f.Post("/api/dla", $"{{\"prompt\": \"{prompt}\", \"answer\": \"{answerToken}\", \"wrong\": \"{wrong}\", \"per_head\": true}}");
        var (logits, cache) = DirectLogitAttribution.RunWithCache(f.Model, tensor(ids).unsqueeze(0));
        using (cache)
        using (var stack = DirectLogitAttribution.PerHeadResidual(f.Model, cache))
        {
            var attribution = DirectLogitAttribution.Project(f.Model, stack, cache, tensor(new[] { answerToken }), tensor(new[] { wrong }));
            Assert.Equal(attribution.Names, dla["components"]!.AsArray().Select(n => n!.GetValue<string>()));
            var values = attribution.For(0);
            for (int c = 0; c < values.Length; c++) Assert.Equal(values[c], D(dla["values"]![c]), 6);
            Assert.Equal(DirectLogitAttribution.LogitDifference(logits, tensor(new[] { answerToken }), tensor(new[] { wrong }))[0], D(dla["logit_difference"]), 5);
        }
    }

    async Task<(JsonNode Answer, List<JsonNode> Events)> RunJob(string body, Func<JsonNode, Task>? onFirstProgress = null, HttpClient? client = null)
    {
        client ??= f.Client;
        using var post = await client.PostAsync("/api/jobs/patching", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.True(post.StatusCode == HttpStatusCode.Accepted, await post.Content.ReadAsStringAsync());
        string id = JsonNode.Parse(await post.Content.ReadAsStringAsync())!["job"]!["id"]!.GetValue<string>();
        var events = new List<JsonNode>();
        using var stream = await client.GetStreamAsync($"/api/jobs/{id}/events");
        using var reader = new StreamReader(stream);
        string? kind = null;
        bool prodded = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) kind = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                var e = JsonNode.Parse(line[6..])!;
                events.Add(e);
                if (!prodded && onFirstProgress is not null && e["done"]!.GetValue<int>() > 0) { prodded = true; await onFirstProgress(e); }
                if (kind == "done") break;
            }
        }
        return (JsonNode.Parse(await client.GetStringAsync($"/api/jobs/{id}"))!, events);
    }

    [Theory]
    [InlineData("activation", "resid_pre")]
    [InlineData("activation", "z")]
    [InlineData("attribution", "resid_pre")]
    public async Task Patching_jobs_stream_progress_and_equal_the_librarys_sweep(string method, string component)
    {
        var clean = f.Prompt(5);
        var corrupted = (long[])clean.Clone();
        long x = Enumerable.Range(1, 60).First(t => !clean.Contains(t));
        corrupted[8] = x; // the first copy of the answer replaced: induction now predicts x
        string body = $"{{\"clean\": \"{ExplorerFixture.Ids(clean)}\", \"corrupted\": \"{ExplorerFixture.Ids(corrupted)}\", \"answer\": \"{clean[8]}\", \"wrong\": \"{x}\", \"component\": \"{component}\", \"method\": \"{method}\", \"cells_per_pass\": 4}}";
        var (answer, events) = await RunJob(body);
        Assert.Equal("done", answer["job"]!["state"]!.GetValue<string>());
        var done = events.Select(e => e["done"]!.GetValue<int>()).ToList();
        Assert.True(done.Zip(done.Skip(1)).All(p => p.First <= p.Second), $"progress went backwards: {string.Join(", ", done)}");
        Assert.Equal(events[^1]["total"]!.GetValue<int>(), done[^1]);
        var p = answer["patching"]!;
        using var pairs = PromptPairs.FromTokens(clean, corrupted, clean[8], x);
        using var expected = method == "activation" ? ActivationPatching.Sweep(f.Model, pairs, component) : AttributionPatching.Sweep(f.Model, pairs, component);
        var table = expected.ToArray2D();
        for (int r = 0; r < table.GetLength(0); r++)
            for (int c = 0; c < table.GetLength(1); c++)
                Assert.Equal(table[r, c], D(p["values"]![r]![c]), 4);
        Assert.Equal(expected.CleanMetric, D(p["clean_metric"]), 4);
        Assert.Equal(answer["job"]!["live_tensors_before"]!.GetValue<long>(), answer["job"]!["live_tensors_after"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_cancelled_sweep_stops_early_and_frees_its_tensors()
    {
        // A sweep of one cell per pass over 4 layers × 96 positions = 384 forward passes, each made to wait 20 ms, so
        // it takes over 7 s on any CPU and the cancel lands mid-run (the organism's sweeps finish in milliseconds).
        var config = new ModelConfig { DModel = 128, NLayers = 4, NHeads = 4, DHead = 32, DMlp = 256, DVocab = 100, NCtx = 96, ActFn = Activation.GeluNew, ModelName = "random-96" };
        using var big = new HookedTransformer(config, seed: 4);
        using var slow = big.AddHook("blocks.0.hook_resid_pre", (_, _) => { Thread.Sleep(20); return null; });
        using var model = new ExplorerModel("random-96", decoder: big);
        await using var server = await ExplorerServer.StartAsync(model);
        using var client = new HttpClient { BaseAddress = server.Address };
        client.DefaultRequestHeaders.Add("X-Explorer-Token", server.Token);
        var rng = new Random(9);
        var clean = Enumerable.Range(0, 96).Select(_ => (long)rng.Next(1, 100)).ToArray();
        var corrupted = (long[])clean.Clone();
        for (int i = 1; i < 96; i += 3) corrupted[i] = rng.Next(1, 100);
        string body = $"{{\"clean\": \"{ExplorerFixture.Ids(clean)}\", \"corrupted\": \"{ExplorerFixture.Ids(corrupted)}\", \"answer\": \"7\", \"wrong\": \"8\", \"component\": \"resid_pre\", \"cells_per_pass\": 1}}";
        var (answer, events) = await RunJob(body, async e =>
        {
            Assert.Equal("running", e["state"]!.GetValue<string>());
            using var response = await client.DeleteAsync($"/api/jobs/{e["id"]!.GetValue<string>()}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }, client);
        var job = answer["job"]!;
        output.WriteLine($"cancelled at {job["done"]}/{job["total"]} cells after {events.Count} events; live tensors on the job's thread {job["live_tensors_before"]} → {job["live_tensors_after"]}");
        Assert.Equal("cancelled", job["state"]!.GetValue<string>());
        Assert.Equal(384, job["total"]!.GetValue<int>());
        Assert.True(job["done"]!.GetValue<int>() < 384);
        Assert.Null(answer["patching"]);
        Assert.Equal(job["live_tensors_before"]!.GetValue<long>(), job["live_tensors_after"]!.GetValue<long>());
        Assert.Equal("cancelled", events[^1]["state"]!.GetValue<string>());
        var status = JsonNode.Parse(await client.GetStringAsync("/api/status"))!;
        Assert.False(status["busy"]!.GetValue<bool>()); // the lane is free again
    }

    [Fact]
    public async Task Features_and_the_feature_page_equal_the_sae_and_the_dashboard()
    {
        var ids = f.Prompt(7);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (_, cache) = f.Model.RunWithCache(tensor(ids).unsqueeze(0), [ExplorerFixture.SaeHook]);
        Tensor acts;
        using (cache) acts = f.Sae.Encode(cache[ExplorerFixture.SaeHook][0]); // [pos, d_sae]
        int feature = (int)acts.sum(0).argmax().item<long>();
        var answer = await f.Post("/api/features", $"{{\"prompt\": \"{ExplorerFixture.Ids(ids)}\", \"sae\": 0, \"top_k\": 4, \"feature\": {feature}}}");
        for (int p = 0; p < ids.Length; p++)
        {
            Assert.Equal(acts[p, feature].item<float>(), D(answer["feature_acts"]![p]), 5);
            var top = answer["per_token"]![p]!.AsArray();
            if (top.Count > 0) Assert.Equal(acts[p].argmax().item<long>(), L(top[0]!["feature"]));
        }
        var page = await f.Post("/api/features/page", $"{{\"sae\": 0, \"feature\": {feature}}}");
        var dashboard = FeatureDashboard.Build(ModelActivations.Reader(f.Model, ExplorerFixture.SaeHook), x => f.Sae.Encode(x), f.Explorer.Corpus,
            t => [.. t.Select(i => i.ToString())], new FeatureDashboardOptions { Features = [feature], Intervals = 10, WindowBefore = 5, WindowAfter = 5 },
            W_dec: f.Sae.W_dec.detach(), W_U: f.Model.unembed.W_U.detach());
        var d = dashboard.Features[0];
        Assert.Equal(d.Density, D(page["frac_nonzero"]), 9);
        Assert.Equal(d.MaxActivation, D(page["max_activation"]), 5);
        Assert.Equal(d.TopLogits![0].TokenId, L(page["pos_logits"]![0]!["token"]));
        Assert.Equal(page["freq_hist_data_bar_values"]!.AsArray().Count, page["freq_hist_data_bar_heights"]!.AsArray().Count); // parallel, as Neuronpedia needs
        Assert.Equal(d.Histogram!.Counts.Sum(), page["freq_hist_data_bar_heights"]!.AsArray().Sum(n => L(n)));
        Assert.Equal(d.TopExamples[0].Activation, D(page["top_activations"]![0]!["activation"]), 5);
    }

    [Fact]
    public async Task Steering_equals_the_librarys_steered_generation()
    {
        var ids = f.Prompt(8);
        string body = $"{{\"prompt\": \"{ExplorerFixture.Ids(ids)}\", \"layer\": 1, \"sae\": 0, \"feature\": 3, \"coefficient\": 12, \"max_new_tokens\": 5}}";
        var answer = await f.Post("/api/steer", body);
        using var scope = NewDisposeScope();
        var tokens = tensor(ids).unsqueeze(0);
        var plain = f.Model.Generate(tokens, 5, 0)[0, ids.Length..].data<long>().ToArray();
        long[] steered;
        using (Steering.Apply(f.Model, "blocks.1.hook_resid_pre", f.Sae.W_dec.detach()[3], 12))
            steered = f.Model.Generate(tokens, 5, 0)[0, ids.Length..].data<long>().ToArray();
        Assert.Equal(plain.Select(t => t.ToString()), answer["unsteered"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(steered.Select(t => t.ToString()), answer["steered"]!.AsArray().Select(n => n!.GetValue<string>()));
        var contrast = await f.Post("/api/steer", $"{{\"prompt\": \"{ExplorerFixture.Ids(ids)}\", \"layer\": 1, \"positive\": \"0 5 9\\n0 7 7\", \"negative\": \"0 3\", \"coefficient\": 2, \"max_new_tokens\": 3}}");
        Assert.Equal(3, contrast["steered"]!.AsArray().Count);
        Assert.Contains("mean(2 positive)", contrast["source"]!.GetValue<string>());
    }

    [Fact]
    public async Task The_openapi_document_lists_every_endpoint()
    {
        var doc = await f.Get("/api/openapi.json");
        Assert.Equal("3.0.3", doc["openapi"]!.GetValue<string>());
        var paths = doc["paths"]!.AsObject();
        foreach (var (method, path, _) in ExplorerServer.Endpoints)
            Assert.True(paths[path]?[method.ToLowerInvariant()] is not null, $"{method} {path} is missing from openapi.json");
        Assert.Equal(ExplorerServer.Endpoints.Select(e => e.Path).Distinct().Count(), paths.Count);
    }

    // ---- load ----

    [Fact]
    public async Task Fifty_concurrent_small_forwards_are_all_answered_correctly_and_memory_returns()
    {
        var prompts = Enumerable.Range(0, 50).Select(i => f.Prompt(100 + i)).ToArray();
        long[] expected;
        using (NewDisposeScope())
            expected = [.. prompts.Select(p => f.Model.Run(tensor(p).unsqueeze(0))[0, -1].argmax().item<long>())];
        async Task<long> Ask(long[] p) => L((await f.Post("/api/prompt", $"{{\"prompt\": \"{ExplorerFixture.Ids(p)}\", \"top_k\": 1}}"))["top"]!.AsArray()[^1]![0]!["token"]);
        await Task.WhenAll(prompts.Take(5).Select(Ask)); // warm-up: the first requests allocate what later ones reuse
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        var process = Process.GetCurrentProcess();
        process.Refresh();
        long before = process.WorkingSet64, managedBefore = GC.GetTotalMemory(true);
        long completedBefore = f.Explorer.Lane.Completed;
        var clock = Stopwatch.StartNew();
        var answers = await Task.WhenAll(prompts.Select(Ask));
        clock.Stop();
        Assert.Equal(expected, answers);
        Assert.Equal(50, f.Explorer.Lane.Completed - completedBefore);
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
        process.Refresh();
        long after = process.WorkingSet64, managedAfter = GC.GetTotalMemory(true);
        output.WriteLine($"50 concurrent /api/prompt: {clock.Elapsed.TotalMilliseconds:0} ms; working set {before >> 20} → {after >> 20} MiB; managed {managedBefore >> 20} → {managedAfter >> 20} MiB");
        Assert.True(after - before < 64L << 20, $"working set grew by {(after - before) >> 20} MiB");
    }
}

/// <summary>An encoder behind the Explorer: pages that need a decoder say so; attention works.</summary>
public sealed class ExplorerEncoderTests
{
    [Fact]
    public async Task An_encoder_shows_attention_and_refuses_decoder_pages_with_a_reason()
    {
        var config = new ModelConfig { DModel = 32, NLayers = 2, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 50, NCtx = 24, ActFn = Activation.Gelu, ModelName = "tiny-encoder" };
        using var encoder = new HookedEncoder(config, seed: 3);
        using var model = new ExplorerModel("tiny-encoder", encoder: encoder);
        await using var server = await ExplorerServer.StartAsync(model);
        using var client = new HttpClient { BaseAddress = server.Address };
        client.DefaultRequestHeaders.Add("X-Explorer-Token", server.Token);
        var info = JsonNode.Parse(await client.GetStringAsync("/api/model"))!;
        Assert.Equal("encoder", info["kind"]!.GetValue<string>());
        using var attention = await client.PostAsync("/api/attention", new StringContent("{\"prompt\": \"1 2 3 4\", \"layer\": 1}"));
        var pattern = JsonNode.Parse(await attention.Content.ReadAsStringAsync())!["pattern"]!;
        using (NewDisposeScope())
        {
            var (_, cache) = encoder.RunWithCache(tensor(new long[] { 1, 2, 3, 4 }).unsqueeze(0), ["blocks.1.attn.hook_pattern"]);
            using (cache) Assert.Equal(cache["blocks.1.attn.hook_pattern"][0, 2, 1, 3].item<float>(), pattern[2]![1]![3]!.GetValue<double>(), 6);
        }
        var prompt = JsonNode.Parse(await (await client.PostAsync("/api/prompt", new StringContent("{\"prompt\": \"1 2 3\"}"))).Content.ReadAsStringAsync())!;
        Assert.Contains("need a decoder", prompt["note"]!.GetValue<string>());
        foreach (var path in new[] { "/api/lens", "/api/dla", "/api/generate" })
        {
            using var refused = await client.PostAsync(path, new StringContent("{\"prompt\": \"1 2 3\"}"));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("needs a decoder", await refused.Content.ReadAsStringAsync());
        }
    }
}
