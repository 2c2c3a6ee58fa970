using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;
using SharpLens.Reports;

namespace SharpLens.BrowserTests;

/// <summary>The attribution-graph viewer in a real browser: what it draws, what the slider removes, what a click shows,
/// and that pinned nodes grouped into a supernode are saved in the downloaded graph's qParams.</summary>
public sealed class GraphViewerPageTests(Browser browser) : IClassFixture<Browser>
{
    static string WritePage(string name, JsonObject? graph = null)
    {
        string folder = Path.Combine(Path.GetTempPath(), "sharplens-viewer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        string json = Path.Combine(folder, "graph.json");
        File.WriteAllText(json, (graph ?? KnownGraph.Json()).ToJsonString());
        string html = Path.Combine(folder, name);
        GraphViewer.Write(json, html, KnownGraph.Features());
        return html;
    }

    static async Task<string[]> ShownNodeIds(IPage page) =>
        (await page.Locator("svg#graph [data-node-id]").EvaluateAllAsync<string[]>("els => els.map(e => e.dataset.nodeId)")).Order().ToArray();

    [Fact]
    public async Task The_known_graph_draws_the_nodes_the_default_threshold_keeps_with_no_console_errors()
    {
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html")).AbsoluteUri, errors);
        // 0.8 keeps L0#5 (0.30) and L1#7 (0.50); prunes L1#9 (0.90) and the error (0.85); embeddings and logits always
        // stay; L0#3 is active at 3 of 3 positions (> 2/3), so it is hidden as circuit-tracer's frontend hides it.
        Assert.Equal(new[] { "0_5_1", "1_7_2", "3_42_2", "E_10_0", "E_11_1", "E_12_2" }, await ShownNodeIds(page));
        // Links between shown nodes: E_11_1→0_5_1, 0_5_1→1_7_2, E_12_2→1_7_2, 1_7_2→logit.
        Assert.Equal(4, await page.Locator("path.link").CountAsync());
        Assert.Contains("3 feature nodes hidden", await page.Locator("#dense-note").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotFolder, "graph-viewer-default.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_slider_removes_exactly_the_nodes_above_its_threshold()
    {
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html")).AbsoluteUri, errors);
        await page.Locator("#threshold").FillAsync("0.4");
        Assert.Equal(new[] { "0_5_1", "3_42_2", "E_10_0", "E_11_1", "E_12_2" }, await ShownNodeIds(page));
        await page.Locator("#threshold").FillAsync("1");
        Assert.Equal(new[] { "0_-1_2", "0_5_1", "1_7_2", "1_9_2", "3_42_2", "E_10_0", "E_11_1", "E_12_2" }, await ShownNodeIds(page));
        await page.Locator("#dense").CheckAsync();
        Assert.Equal(11, (await ShownNodeIds(page)).Length);
        Assert.Contains("threshold=1", page.Url);
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Clicking_a_node_lists_its_input_and_output_edges_with_their_weights()
    {
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html")).AbsoluteUri, errors);
        await page.Locator("svg#graph [data-node-id='1_7_2']").ClickAsync();
        Assert.Equal("L1 #7 @2", await page.Locator("#clicked-label").InnerTextAsync());
        var inputs = await page.Locator("table.inputs tr.edge").EvaluateAllAsync<string[][]>(
            "rows => rows.map(r => [r.dataset.nodeId, ...[...r.cells].slice(1).map(c => c.textContent)])");
        // Ordered by |weight|; % of input = weight / Σ|incoming| = w / (1.5 + 0.3 + 0.5 + 0.05).
        Assert.Equal(new[] { "0_5_1", "1.50", "63.8" }, inputs[0]);
        Assert.Equal(new[] { "E_12_2", "-0.500", "-21.3" }, inputs[1]);
        Assert.Equal(new[] { "0_-1_2", "0.300", "12.8" }, inputs[2]);
        Assert.Equal(new[] { "0_3_1", "0.0500", "2.1" }, inputs[3]);
        var outputs = await page.Locator("table.outputs tr.edge").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.nodeId)");
        Assert.Equal(new[] { "3_42_2" }, outputs);
        // Edges touching the clicked node are emphasised, the rest dimmed.
        Assert.Equal(3, await page.Locator("path.link.near").CountAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotFolder, "graph-viewer-clicked.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_feature_node_shows_its_dashboard_of_contexts_and_logit_effects()
    {
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html")).AbsoluteUri, errors);
        await page.Locator("svg#graph [data-node-id='0_5_1']").ClickAsync();
        string side = await page.Locator("#details").InnerTextAsync();
        Assert.Contains("test-transcoders/0 #5", side);
        string flat = System.Text.RegularExpressions.Regex.Replace(side, @"\s+", " ");
        Assert.Contains("raises B, b", flat);
        Assert.Contains("lowers Z", flat);
        Assert.Contains("Top activations", side);
        Assert.Equal(6, await page.Locator("#details .ex .tok").CountAsync());
        Assert.Equal(4, await page.Locator("#details svg.histogram rect").CountAsync());
        // The strongest token of the first context (3.5 = act_max) is fully coloured.
        Assert.Equal("rgb(234, 88, 12)", await page.Locator("#details .ex .tok").Nth(1).EvaluateAsync<string>("e => getComputedStyle(e).backgroundColor"));
        await page.Locator("svg#graph [data-node-id='1_7_2']").ClickAsync();
        Assert.Contains("No dashboard data", await page.Locator("#details").InnerTextAsync());
        await page.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotFolder, "graph-viewer-feature.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Pinned_nodes_grouped_into_a_supernode_are_saved_in_the_downloaded_qParams_and_the_url()
    {
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html")).AbsoluteUri, errors);
        foreach (string id in new[] { "0_5_1", "1_7_2" })
        {
            await page.Locator($"svg#graph [data-node-id='{id}']").ClickAsync();
            await page.Locator("#pin").ClickAsync();
        }
        await page.Locator("#supernode-label").FillAsync("A then B");
        await page.Locator("#group").ClickAsync();
        Assert.Equal(1, await page.Locator("rect.supernode").CountAsync());
        await page.Locator("svg#graph [data-node-id='E_11_1']").ClickAsync();
        await page.Locator("#pin").ClickAsync();

        var download = await page.RunAndWaitForDownloadAsync(() => page.Locator("#download").ClickAsync());
        Assert.Equal("known-two-hop.json", download.SuggestedFilename);
        string saved = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".json");
        await download.SaveAsAsync(saved);
        using var doc = JsonDocument.Parse(File.ReadAllText(saved));
        var q = doc.RootElement.GetProperty("qParams");
        Assert.Equal("""[["A then B","0_5_1","1_7_2"]]""", q.GetProperty("supernodes").GetRawText());
        Assert.Equal("""["E_11_1"]""", q.GetProperty("pinnedIds").GetRawText());
        Assert.Equal("E_11_1", q.GetProperty("clickedId").GetString());
        Assert.Equal("both", q.GetProperty("linkType").GetString());
        // Everything else is the graph as it was.
        Assert.Equal(KnownGraph.Json()["nodes"]!.ToJsonString(), JsonNode.Parse(doc.RootElement.GetProperty("nodes").GetRawText())!.ToJsonString());

        // The same view reopens from its URL.
        var again = await browser.OpenAsync(page.Url, errors);
        Assert.Equal(1, await again.Locator("rect.supernode").CountAsync());
        Assert.Equal("Emb: “A”", await again.Locator("#clicked-label").InnerTextAsync());
        Assert.Equal(1, await again.Locator("svg#graph .node.pinned").CountAsync());
        await again.ScreenshotAsync(new() { Path = Path.Combine(Browser.ScreenshotFolder, "graph-viewer-supernode.png"), FullPage = true });
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_prompt_token_holding_a_closing_script_tag_is_shown_as_text()
    {
        var graph = KnownGraph.Json();
        graph["metadata"]!["prompt_tokens"]![1] = "</script><b>x";
        var errors = new List<string>();
        var page = await browser.OpenAsync(new Uri(WritePage("graph.html", graph)).AbsoluteUri, errors);
        Assert.Contains("</script><b>x", await page.Locator("svg#graph text.token-label").Nth(1).TextContentAsync());
        Assert.Equal(6, (await ShownNodeIds(page)).Length);
        Assert.Empty(errors);
    }
}
