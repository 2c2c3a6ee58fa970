using System.Globalization;
using Microsoft.Playwright;
using SharpLens.Attribution;
using SharpLens.Corpora;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Organisms;
using SharpLens.Saes;
using SharpLens.Server.Explorer;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.BrowserTests;

/// <summary>
/// Four Explorers for the page tests: the tour's induction organism (with a random SAE at blocks.1.hook_resid_pre),
/// all-MiniLM-L6-v2 (an encoder), a random decoder big enough that a patching sweep runs for seconds (to cancel it),
/// and a random 3-layer decoder with MLPs and GPT-2's tokenizer, with random transcoders saved in circuit-tracer's
/// layout (the Graph page) and a random SAE whose feature pages read an excerpt of the Brown Corpus.
/// </summary>
public sealed class ExplorerSites : IAsyncLifetime
{
    public Browser Browser { get; } = new();
    public InductionOrganism Induction { get; private set; } = null!;
    public Sae Sae { get; private set; } = null!;
    public ExplorerServer Organism { get; private set; } = null!;
    public HookedEncoder MiniLm { get; private set; } = null!;
    public ExplorerServer Encoder { get; private set; } = null!;
    public HookedTransformer Big { get; private set; } = null!;
    public ExplorerServer Slow { get; private set; } = null!;
    public HookedTransformer Mlp { get; private set; } = null!;
    public TranscoderSet Transcoders { get; private set; } = null!;
    public Sae TextSae { get; private set; } = null!;
    public ExplorerServer Graph { get; private set; } = null!;
    readonly string _transcoderFolder = Path.Combine(Path.GetTempPath(), $"sharplens-browser-transcoders-{Guid.NewGuid():N}");
    readonly List<ExplorerModel> _models = [];
    public const string SaeHook = "blocks.1.hook_resid_pre";

    public async Task InitializeAsync()
    {
        await Browser.InitializeAsync();
        Induction = SharpLens.Organisms.Organism.Induction();
        Sae = new Sae(new SaeConfig(SaeArchitecture.Standard, Induction.Model.Config.DModel, 64) { Metadata = new() { HookName = SaeHook } }, seed: 3);
        Organism = await Start(new ExplorerModel("induction", decoder: Induction.Model, saes: [new ExplorerSae("random-sae", Sae, SaeHook)]));
        MiniLm = HookedEncoder.FromPretrained("all-MiniLM-L6-v2");
        Encoder = await Start(new ExplorerModel("all-MiniLM-L6-v2", encoder: MiniLm));
        var config = new ModelConfig { DModel = 128, NLayers = 4, NHeads = 4, DHead = 32, DMlp = 256, DVocab = 100, NCtx = 96, ActFn = Activation.GeluNew, ModelName = "random-96" };
        Big = new HookedTransformer(config, seed: 4);
        // Slow on any machine: every forward pass waits 30 ms, so a 384-cell sweep takes over 10 s and a cancel
        // always arrives while it runs (on a fast CPU the bare model finished the sweep before the click).
        Big.AddHook("blocks.0.hook_resid_pre", (_, _) => { Thread.Sleep(30); return null; });
        Slow = await Start(new ExplorerModel("random-96", decoder: Big));
        Mlp = new HookedTransformer(new ModelConfig { DModel = 32, NLayers = 3, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 50257, NCtx = 64,
            ActFn = Activation.GeluNew, ModelName = "random-mlp", TokenizerName = "gpt2" }, seed: 11);
        using (var made = RandomTranscoders(3, 32, 12)) TranscoderFiles.Save(made, _transcoderFolder);
        Transcoders = TranscoderFiles.Load(_transcoderFolder);
        TextSae = new Sae(new SaeConfig(SaeArchitecture.Standard, 32, 32) { Metadata = new() { HookName = "blocks.1.hook_resid_pre" } }, seed: 5);
        var brown = TextCorpus.FromBrown(BrownCorpus.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt")));
        Graph = await Start(new ExplorerModel("random-mlp", decoder: Mlp, saes: [new ExplorerSae("random-sae", TextSae, "blocks.1.hook_resid_pre")],
            graphModel: new ReplacementModel(Mlp, Transcoders), contexts: ExplorerContexts.FromText(brown, decoder: Mlp, contexts: 16, contextSize: 32)));
    }

    /// <summary>Per-layer ReLU transcoders with random weights, about half their features active on any token.</summary>
    static TranscoderSet RandomTranscoders(int nLayers, long dModel, long dTc)
    {
        var g = new Generator(3);
        var wEnc = randn(nLayers, dTc, dModel, generator: g) / Math.Sqrt(dModel);
        var bEnc = 0.1 * randn(nLayers, dTc, generator: g);
        var bDec = 0.1 * randn(nLayers, dModel, generator: g);
        var wDec = Enumerable.Range(0, nLayers).Select(_ => 0.3 * randn(dTc, 1, dModel, generator: g) / Math.Sqrt(dTc)).ToArray();
        return new TranscoderSet(false, wEnc, bEnc, bDec, wDec, TranscoderActivation.Relu, null, 0, null, "hook_resid_mid", "hook_mlp_out", "random-browser-test");
    }

    async Task<ExplorerServer> Start(ExplorerModel model)
    {
        _models.Add(model);
        return await ExplorerServer.StartAsync(model);
    }

    public async Task DisposeAsync()
    {
        foreach (var s in new[] { Organism, Encoder, Slow, Graph }) if (s is not null) await s.DisposeAsync();
        foreach (var m in _models) m.Dispose();
        Transcoders?.Dispose();
        TextSae?.Dispose();
        Mlp?.Dispose();
        if (Directory.Exists(_transcoderFolder)) Directory.Delete(_transcoderFolder, recursive: true);
        Sae?.Dispose();
        Induction?.Dispose();
        MiniLm?.Dispose();
        Big?.Dispose();
        await Browser.DisposeAsync();
    }
}

/// <summary>The Explorer's pages in Debian's Chromium: they load without console errors, show the library's values,
/// and their controls (zoom, hover, patching with progress and cancel, feature search, steering) work.</summary>
public sealed class ExplorerPageTests(ExplorerSites sites) : IClassFixture<ExplorerSites>
{
    static readonly string[] Pages = ["prompt", "attention", "lens", "patching", "features", "graph", "steering"];
    static readonly CultureInfo C = CultureInfo.InvariantCulture;

    async Task<IPage> Open(ExplorerServer server, string hash, List<string> errors)
    {
        var page = await sites.Browser.OpenAsync($"{server.Url}{hash}", errors);
        string name = hash.TrimStart('#').Split('?')[0];
        await page.WaitForSelectorAsync($"#view[data-ready='{name}']", new() { Timeout = 60_000 });
        return page;
    }

    static Task Shot(IPage page, string name) => page.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotFolder, $"explorer-{name}.png"), FullPage = true });

    [Fact]
    public async Task Every_page_loads_on_the_organism_without_console_errors()
    {
        var errors = new List<string>();
        foreach (var name in Pages)
        {
            var page = await Open(sites.Organism, "#" + name, errors);
            Assert.Equal(0, await page.Locator(".error").CountAsync());
            await Shot(page, $"organism-{name}");
            await page.CloseAsync();
        }
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Every_page_loads_on_MiniLM_and_the_decoder_pages_say_they_need_one()
    {
        var errors = new List<string>();
        foreach (var name in Pages)
        {
            var page = await Open(sites.Encoder, $"#{name}?prompt=The%20cat%20sat%20on%20the%20mat.", errors);
            if (name is "prompt" or "lens" or "patching" or "graph" or "steering")
                Assert.Contains("needs a decoder", await page.Locator("#needs-decoder").InnerTextAsync());
            if (name == "features") Assert.Contains("No SAE was loaded", await page.Locator("#no-sae").InnerTextAsync());
            if (name == "attention") Assert.Equal(sites.MiniLm.Config.NHeads, await page.Locator("#head-grid .thumb").CountAsync());
            if (name == "prompt") Assert.Equal("[CLS]", await page.Locator("#prompt-tokens .tok").First.InnerTextAsync());
            await Shot(page, $"minilm-{name}");
            await page.CloseAsync();
        }
        Assert.Empty(errors);
    }

    static long[] Ids(string text) => [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(long.Parse)];

    [Fact]
    public async Task The_prompt_page_shows_the_librarys_top_prediction_and_its_probability()
    {
        var errors = new List<string>();
        var page = await Open(sites.Organism, "#prompt", errors);
        var ids = Ids(sites.Organism.Model.Examples.Prompt);
        using var scope = NewDisposeScope();
        var probs = sites.Induction.Model.Run(tensor(ids).unsqueeze(0))[0, -1].softmax(-1); // [d_vocab]
        long best = probs.argmax().item<long>();
        var first = page.Locator("#topk-table tr[data-token]").First;
        Assert.Equal(best.ToString(C), await first.Locator(".tokcell").InnerTextAsync());
        Assert.Equal(probs[best].item<float>().ToString("0.0000", C), await first.Locator("td.num").Nth(1).InnerTextAsync());
        // Hovering an earlier token shows the predictions after it.
        await page.Locator("#prompt-tokens .tok[data-pos='3']").HoverAsync();
        Assert.Contains("after position 3", await page.Locator("#topk h3").InnerTextAsync());
        Assert.Contains("pos=3", page.Url);
        await page.ClickAsync("#run-generate");
        await page.WaitForSelectorAsync("#generated .tok");
        Assert.Equal(20, await page.Locator("#generated .tok").CountAsync());
        await Shot(page, "prompt-generated");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_head_grid_zooms_on_click_and_the_hover_shows_the_librarys_pattern()
    {
        var errors = new List<string>();
        var page = await Open(sites.Organism, "#attention?layer=1", errors);
        await page.ClickAsync("#head-grid .thumb[data-head='2']");
        Assert.Equal("2", await page.Locator("#zoom-canvas").GetAttributeAsync("data-head"));
        Assert.Contains("head=2", page.Url);
        var ids = Ids(sites.Organism.Model.Examples.Prompt);
        using var scope = NewDisposeScope();
        var (_, cache) = sites.Induction.Model.RunWithCache(tensor(ids).unsqueeze(0), ["blocks.1.attn.hook_pattern"]);
        Tensor pattern;
        using (cache) pattern = cache["blocks.1.attn.hook_pattern"][0, 2].clone(); // [dest, src]
        int n = ids.Length, dest = n - 1, src = (int)pattern[dest].argmax().item<long>(); // where the last token looks most
        await page.Locator("#zoom-canvas").ScrollIntoViewIfNeededAsync();
        var box = (await page.Locator("#zoom-canvas").BoundingBoxAsync())!;
        await page.Mouse.MoveAsync(box.X + (src + 0.5f) * box.Width / n, box.Y + (dest + 0.5f) * box.Height / n);
        string tip = await page.Locator("#tooltip").InnerTextAsync();
        Assert.Contains($"{dest} “{ids[dest]}” ← {src} “{ids[src]}”: {pattern[dest, src].item<float>().ToString("0.0000", C)}", tip);
        await Shot(page, "attention-zoomed");
        // Token-centric view: hovering the last token colours every token by the attention it pays them.
        await page.Locator("#attn-tokens .tok").Nth(dest).HoverAsync();
        var values = await page.Locator("#attn-tokens .tok").EvaluateAllAsync<double[]>("els => els.map(e => Number(e.dataset.value))");
        for (int j = 0; j < n; j++) Assert.Equal(pattern[dest, j].item<float>(), values[j], 5);
        await Shot(page, "attention-token-hover");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_patching_run_shows_progress_and_the_librarys_cells()
    {
        var errors = new List<string>();
        var page = await Open(sites.Organism, "#patching?cells=4", errors);
        await page.ClickAsync("#run-patching");
        await page.WaitForSelectorAsync("#patch-heat", new() { Timeout = 60_000 });
        Assert.Equal("done", await page.Locator("#patch-status").GetAttributeAsync("data-state"));
        Assert.Contains("100%", await page.Locator("#patch-progress > div").GetAttributeAsync("style") ?? "");
        var ex = sites.Organism.Model.Examples;
        using var pairs = PromptPairs.FromTokens(Ids(ex.Clean), Ids(ex.Corrupted), long.Parse(ex.Answer, C), long.Parse(ex.Wrong, C));
        using var expected = ActivationPatching.Sweep(sites.Induction.Model, pairs, "resid_pre");
        var table = expected.ToArray2D();
        foreach (var (r, c) in new[] { (0, 8), (1, Ids(ex.Clean).Length - 1), (1, 3) })
        {
            string shown = (await page.Locator($"#patch-heat td[data-row='{r}'][data-col='{c}']").GetAttributeAsync("data-value"))!;
            Assert.Equal(table[r, c], double.Parse(shown, C), 4);
        }
        await Shot(page, "patching-done");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_patching_run_can_be_cancelled_from_the_page()
    {
        var errors = new List<string>();
        var rng = new Random(9);
        var clean = Enumerable.Range(0, 96).Select(_ => rng.Next(1, 100)).ToArray();
        var corrupted = (int[])clean.Clone();
        for (int i = 1; i < 96; i += 3) corrupted[i] = rng.Next(1, 100);
        string hash = $"#patching?clean={string.Join("%20", clean)}&corrupted={string.Join("%20", corrupted)}&answer=7&wrong=8&cells=1";
        var page = await Open(sites.Slow, hash, errors);
        await page.ClickAsync("#run-patching");
        await page.WaitForFunctionAsync("() => /running: [1-9]\\d*\\/384/.test(document.querySelector('#patch-status').textContent)", null, new() { Timeout = 60_000 });
        await Shot(page, "patching-running");
        await page.ClickAsync("#cancel-patching");
        await page.WaitForSelectorAsync("#patch-status[data-state='cancelled']", new() { Timeout = 30_000 });
        string status = await page.Locator("#patch-status").InnerTextAsync();
        int done = int.Parse(status.Split(' ')[1].Split('/')[0], C);
        Assert.InRange(done, 1, 383);
        Assert.Equal(0, await page.Locator("#patch-heat").CountAsync());
        await Shot(page, "patching-cancelled");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Feature_search_opens_a_feature_page_and_tests_custom_text()
    {
        var errors = new List<string>();
        var page = await Open(sites.Organism, "#features", errors);
        Assert.True(await page.Locator("#feature-tokens .tok").CountAsync() > 0);
        await page.FillAsync("#feature-input", "5");
        await page.ClickAsync("#open-feature");
        await page.WaitForSelectorAsync("#feature-density");
        Assert.Contains("Feature 5 of random-sae", await page.Locator("#feature-title").InnerTextAsync());
        await page.WaitForSelectorAsync("#custom-out .tok");
        // The custom-text test shows the SAE's activation of feature 5 at each token.
        var ids = Ids(sites.Organism.Model.Examples.Prompt);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (_, cache) = sites.Induction.Model.RunWithCache(tensor(ids).unsqueeze(0), [ExplorerSites.SaeHook]);
        Tensor acts;
        using (cache) acts = sites.Sae.Encode(cache[ExplorerSites.SaeHook][0])[.., 5].clone(); // [pos]
        var shown = await page.Locator("#custom-out .tok").EvaluateAllAsync<double[]>("els => els.map(e => Number(e.dataset.value))");
        Assert.Equal(ids.Length, shown.Length);
        for (int p = 0; p < ids.Length; p++) Assert.Equal(acts[p].item<float>(), shown[p], 5);
        Assert.True(await page.Locator("#feature-hist rect").CountAsync() > 0);
        Assert.Contains("feature=5", page.Url);
        await Shot(page, "feature-page");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Steering_compares_the_librarys_steered_and_unsteered_generations()
    {
        var errors = new List<string>();
        var ex = sites.Organism.Model.Examples;
        var page = await Open(sites.Organism, "#steering?layer=1&coefficient=6&n=8", errors);
        await page.ClickAsync("#run-steering");
        await page.WaitForSelectorAsync("#steered .tok");
        var model = sites.Induction.Model;
        using var scope = NewDisposeScope();
        var tokens = tensor(Ids(ex.Prompt)).unsqueeze(0);
        var vector = Steering.ContrastiveVector(model, "blocks.1.hook_resid_pre", tensor(Ids(ex.Clean)).unsqueeze(0), tensor(Ids(ex.Corrupted)).unsqueeze(0),
            ones([1, Ids(ex.Clean).Length], ScalarType.Int64), ones([1, Ids(ex.Corrupted).Length], ScalarType.Int64));
        var plain = model.Generate(tokens, 8, 0)[0, (int)tokens.shape[1]..].data<long>().ToArray();
        long[] steered;
        using (Steering.Apply(model, "blocks.1.hook_resid_pre", vector, 6)) steered = model.Generate(tokens, 8, 0)[0, (int)tokens.shape[1]..].data<long>().ToArray();
        Assert.Equal(plain.Select(t => t.ToString(C)), await page.Locator("#unsteered .tok").AllInnerTextsAsync());
        Assert.Equal(steered.Select(t => t.ToString(C)), await page.Locator("#steered .tok").AllInnerTextsAsync());
        await Shot(page, "steering-compared");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_graph_page_computes_a_graph_with_progress_and_a_click_on_a_node_shows_its_details()
    {
        var errors = new List<string>();
        var page = await Open(sites.Graph, "#graph", errors);
        Assert.Equal(0, await page.Locator("#no-graph").CountAsync());
        await page.ClickAsync("#run-graph");
        await page.WaitForSelectorAsync("#graph-status[data-state='done']", new() { Timeout = 120_000 });
        Assert.Contains("100%", await page.Locator("#graph-progress > div").GetAttributeAsync("style") ?? "");
        Assert.Matches(@"^done: ", await page.Locator("#graph-status").InnerTextAsync());
        string json = await page.EvaluateAsync<string>("async () => (await fetch(document.querySelector('#graph-download').getAttribute('href'))).text()");
        var graph = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var nodes = graph["nodes"]!.AsArray().ToDictionary(n => n!["node_id"]!.GetValue<string>(), n => n!);
        Assert.Contains("When Mary and John", graph["metadata"]!["prompt"]!.GetValue<string>());
        var frame = page.FrameLocator("#graph-frame");
        await frame.Locator("svg#graph [data-node-id]").First.WaitForAsync(new() { Timeout = 30_000 });
        var shown = await frame.Locator("svg#graph [data-node-id]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.nodeId)");
        Assert.NotEmpty(shown);
        Assert.All(shown, id => Assert.True(nodes.ContainsKey(id), $"the viewer drew {id}, which graph.json does not have"));
        await Shot(page, "graph");
        // A feature node: its label names layer, feature and position; its inputs are listed.
        string feature = shown.First(id => nodes[id]["feature_type"]!.GetValue<string>() == "cross layer transcoder");
        var n = nodes[feature];
        await frame.Locator($"svg#graph [data-node-id='{feature}']").ClickAsync();
        Assert.Equal($"L{n["layer"]!.GetValue<string>()} #{feature.Split('_')[1]} @{n["ctx_idx"]!.GetValue<int>()}", await frame.Locator("#clicked-label").InnerTextAsync());
        Assert.True(await frame.Locator("table.inputs tr.edge").CountAsync() > 0);
        await Shot(page, "graph-clicked");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Feature_pages_show_text_contexts_and_say_where_they_came_from()
    {
        var errors = new List<string>();
        var page = await Open(sites.Graph, "#features", errors);
        Assert.Equal("text", await page.Locator("#corpus-source").GetAttributeAsync("data-source"));
        Assert.Contains("brown: ", await page.Locator("#corpus-source").InnerTextAsync());
        Assert.Contains("tokenized with the model's tokenizer (gpt2)", await page.Locator("#corpus-source").InnerTextAsync());
        await page.FillAsync("#feature-input", "2");
        await page.ClickAsync("#open-feature");
        await page.WaitForSelectorAsync("#feature-corpus");
        Assert.Equal("text", await page.Locator("#feature-corpus").GetAttributeAsync("data-source"));
        // The top contexts are words of the excerpt, as GPT-2 tokenized them.
        string top = await page.Locator("#top-contexts .ctx").First.InnerTextAsync();
        Assert.Matches(@"[A-Za-z]{3,}", top);
        await Shot(page, "feature-page-text");
        var organism = await Open(sites.Organism, "#features", errors);
        Assert.Equal("random", await organism.Locator("#corpus-source").GetAttributeAsync("data-source"));
        Assert.Contains("has no tokenizer", await organism.Locator("#corpus-source").InnerTextAsync());
        Assert.Empty(errors);
    }
}
