using SharpLens.Reports;

namespace SharpLens.Tests.Reports;

public sealed class GraphViewerTests
{
    const string Minimal = """
        {"metadata":{"slug":"s","scan":"x","prompt_tokens":["a","</script><script>alert(1)</script>"],"prompt":"a b"},
         "qParams":{"pinnedIds":[],"supernodes":[],"linkType":"both","clickedId":"","sg_pos":""},
         "nodes":[{"node_id":"E_1_0","feature":0,"layer":"E","ctx_idx":0,"feature_type":"embedding","jsNodeId":"E_1-0","clerp":""},
                  {"node_id":"2_7_1","feature":7,"layer":"2","ctx_idx":1,"feature_type":"logit","jsNodeId":"2_7_1","clerp":""}],
         "links":[{"source":"E_1_0","target":"2_7_1","weight":0.5}]}
        """;

    [Fact]
    public void The_page_embeds_the_graph_so_no_token_can_close_its_script_block()
    {
        string html = GraphViewer.Render(Minimal);
        int open = html.IndexOf("<script type=\"application/json\" id=\"graph-data\">", StringComparison.Ordinal);
        int close = html.IndexOf("</script>", open, StringComparison.Ordinal);
        string embedded = html[(open + html[open..].IndexOf('>') + 1)..close];
        Assert.Contains("\\u003c/script>\\u003cscript>alert(1)\\u003c/script>", embedded);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));   // nothing is fetched
        Assert.DoesNotContain("https://", html);
    }

    [Theory]
    [InlineData("\"links\":[{\"source\":\"E_1_0\",\"target\":\"2_7_1\",\"weight\":0.5}]", "\"links\":[{\"source\":\"E_9_0\",\"target\":\"2_7_1\",\"weight\":0.5}]", "links[0].source", "E_9_0")]
    [InlineData("\"ctx_idx\":1", "\"ctx_idx\":5", "nodes[1].ctx_idx", "2-token prompt")]
    [InlineData("\"layer\":\"E\",", "", "nodes[0].layer", "missing")]
    [InlineData("\"prompt_tokens\":[", "\"prompt_tokens\":[3,", "metadata.prompt_tokens", "string")]
    [InlineData("\"node_id\":\"2_7_1\"", "\"node_id\":\"E_1_0\"", "nodes[1].node_id", "two nodes")]
    public void A_malformed_graph_is_refused_naming_the_file_and_field(string from, string to, string field, string says)
    {
        string broken = Minimal.Replace(from, to);
        Assert.NotEqual(Minimal, broken);
        var e = Assert.Throws<GraphFileException>(() => GraphViewer.Render(broken, source: "/data/g/graph.json"));
        Assert.Equal(field, e.Field);
        Assert.StartsWith("/data/g/graph.json, field " + field + ":", e.Message);
        Assert.Contains(says, e.Message);
    }

    [Fact]
    public void Not_json_and_a_missing_file_are_refused_with_their_path()
    {
        Assert.Contains("not valid JSON", Assert.Throws<GraphFileException>(() => GraphViewer.Render("{nodes:", source: "g.json")).Message);
        string missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N"), "graph.json");
        var e = Assert.Throws<GraphFileException>(() => GraphViewer.Write(missing, missing + ".html"));
        Assert.StartsWith(missing, e.Message);
        Assert.False(File.Exists(missing + ".html"));
    }

    [Fact]
    public void Write_puts_the_page_beside_the_graph_atomically()
    {
        string folder = Path.Combine(Path.GetTempPath(), "sharplens-viewer-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "graph.json"), Minimal);
        GraphViewer.Write(Path.Combine(folder, "graph.json"), Path.Combine(folder, "graph.html"));
        Assert.Equal(new[] { "graph.html", "graph.json" }, Directory.GetFiles(folder).Select(f => Path.GetFileName(f)).Order().ToArray());
        Assert.Contains("id=\"graph-data\"", File.ReadAllText(Path.Combine(folder, "graph.html")));
        Directory.Delete(folder, recursive: true);
    }
}
