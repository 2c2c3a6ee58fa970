using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>graph.json's metadata (circuit-tracer's frontend <c>Metadata</c>; Neuronpedia requires slug, scan, prompt_tokens, prompt).</summary>
public sealed record GraphMetadata(
    [property: JsonPropertyName("slug")] string Slug,
    [property: JsonPropertyName("scan")] string Scan,
    [property: JsonPropertyName("transcoder_list")] IReadOnlyList<string> TranscoderList,
    [property: JsonPropertyName("prompt_tokens")] IReadOnlyList<string> PromptTokens,
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("node_threshold")] double? NodeThreshold,
    [property: JsonPropertyName("schema_version")] int? SchemaVersion);

/// <summary>The viewer's saved state: pinned nodes, supernodes ([label, node_id, …] each), link type, clicked node.</summary>
public sealed record GraphQParams(
    [property: JsonPropertyName("pinnedIds")] IReadOnlyList<string> PinnedIds,
    [property: JsonPropertyName("supernodes")] IReadOnlyList<IReadOnlyList<string>> Supernodes,
    [property: JsonPropertyName("linkType")] string LinkType,
    [property: JsonPropertyName("clickedId")] string ClickedId,
    [property: JsonPropertyName("sg_pos")] string SgPos);

/// <summary>One node as circuit-tracer's frontend <c>Node</c> writes it.</summary>
public sealed record GraphNode(
    [property: JsonPropertyName("node_id")] string NodeId,
    [property: JsonPropertyName("feature")] long Feature,
    [property: JsonPropertyName("layer")] string Layer,
    [property: JsonPropertyName("ctx_idx")] int CtxIdx,
    [property: JsonPropertyName("feature_type")] string FeatureType,
    [property: JsonPropertyName("token_prob")] double TokenProb,
    [property: JsonPropertyName("is_target_logit")] bool IsTargetLogit,
    [property: JsonPropertyName("run_idx")] int RunIdx,
    [property: JsonPropertyName("reverse_ctx_idx")] int ReverseCtxIdx,
    [property: JsonPropertyName("jsNodeId")] string JsNodeId,
    [property: JsonPropertyName("clerp")] string Clerp,
    [property: JsonPropertyName("influence")] double? Influence,
    [property: JsonPropertyName("activation")] double? Activation);

public sealed record GraphLink(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("target")] string Target,
    [property: JsonPropertyName("weight")] double Weight);

/// <summary>The whole of graph.json: what circuit-tracer's frontend and Neuronpedia's upload read.</summary>
public sealed record GraphDocument(
    [property: JsonPropertyName("metadata")] GraphMetadata Metadata,
    [property: JsonPropertyName("qParams")] GraphQParams QParams,
    [property: JsonPropertyName("nodes")] IReadOnlyList<GraphNode> Nodes,
    [property: JsonPropertyName("links")] IReadOnlyList<GraphLink> Links);

/// <summary>graph-metadata.json: the list of graphs in a folder, as circuit-tracer's local server reads it.</summary>
public sealed record GraphMetadataList([property: JsonPropertyName("graphs")] IReadOnlyList<GraphMetadata> Graphs);

[JsonSourceGenerationOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(GraphDocument))]
[JsonSerializable(typeof(GraphMetadataList))]
public sealed partial class GraphJsonContext : JsonSerializerContext;

/// <summary>
/// Builds graph.json from a graph and its pruning exactly as circuit-tracer's create_graph_files does: nodes of the node
/// mask in node order, then only those touched by a kept edge (plus every token and logit node); links for every kept
/// (target, source) pair in row-major order with the raw signed adjacency weight. Node ids:
/// <code>
/// feature  "{layer}_{feature}_{pos}"   feature = Cantor pair (l + f)(l + f + 1)/2 + f   jsNodeId "{layer}_{feature}-0"
/// error    "{layer}_-1_{pos}"          feature = −1                                      jsNodeId "{layer}_-1-{pos}"
/// token    "E_{token_id}_{pos}"        feature = pos, layer "E"                          jsNodeId "E_{token_id}-{pos}"
/// logit    "{n_layers+1}_{vocab}_{n_pos−1}"  feature = vocab id, clerp 'Output "tok" (p=0.123)'  jsNodeId "L_{vocab}-{n_pos−1}"
/// </code>
/// </summary>
public static class GraphJson
{
    public static long Cantor(long x, long y) => (x + y) * (x + y + 1) / 2 + y;

    public static GraphDocument Build(AttributionGraph g, PruneResult prune, string slug, double nodeThreshold)
    {
        var nodeMask = prune.NodeMask.to(ScalarType.Bool).data<bool>().ToArray();
        var scores = prune.CumulativeScores.to(ScalarType.Float32).data<float>().ToArray();
        var tokens = g.InputTokens.data<long>().ToArray();
        var activations = g.ActivationValues.data<float>().ToArray();
        var selected = g.SelectedFeatures.data<long>().ToArray();
        var active = g.ActiveFeatures.contiguous().data<long>().ToArray();
        var probs = g.LogitProbabilities.data<float>().ToArray();
        int nf = g.NFeatures, nPos = g.NPos, L = g.NLayers;

        var nodes = new Dictionary<int, GraphNode>();
        for (int i = 0; i < nodeMask.Length; i++)
        {
            if (!nodeMask[i]) continue;
            if (i < nf)
            {
                long a = selected[i];
                int layer = (int)active[3 * a], pos = (int)active[3 * a + 1];
                long feat = active[3 * a + 2];
                nodes[i] = new GraphNode($"{layer}_{feat}_{pos}", Cantor(layer, feat), layer.ToString(CultureInfo.InvariantCulture), pos,
                    "cross layer transcoder", 0, false, 0, 0, $"{layer}_{feat}-0", "", scores[i], activations[a]);
            }
            else if (i < g.TokenStart)
            {
                int layer = (i - nf) / nPos, pos = (i - nf) % nPos;
                // circuit-tracer ≥ 0.5.1 (its issue #78): the feature slot −1 keeps error ids apart from feature ids.
                // The older "0_{layer}_{pos}" / "{layer}_{pos}-0" collided with feature {layer} of layer 0 at {pos}.
                nodes[i] = new GraphNode($"{layer}_-1_{pos}", -1, layer.ToString(CultureInfo.InvariantCulture), pos,
                    "mlp reconstruction error", 0, false, 0, 0, $"{layer}_-1-{pos}", "", scores[i], null);
            }
            else if (i < g.LogitStart)
            {
                int pos = i - g.TokenStart;
                nodes[i] = new GraphNode($"E_{tokens[pos]}_{pos}", pos, "E", pos, "embedding", 0, false, 0, 0, $"E_{tokens[pos]}-{pos}", "", scores[i], null);
            }
            else
            {
                int k = i - g.LogitStart;
                string layer = (L + 1).ToString(CultureInfo.InvariantCulture);
                long vocab = g.LogitTargets[k];
                double p = probs[k];
                nodes[i] = new GraphNode($"{layer}_{vocab}_{nPos - 1}", vocab, layer, nPos - 1, "logit", p, k == 0, 0, 0,
                    $"L_{vocab}-{nPos - 1}", $"Output \"{g.LogitTokens[k]}\" (p={p.ToString("F3", CultureInfo.InvariantCulture)})", null, null);
            }
        }

        var links = new List<GraphLink>();
        var connected = new HashSet<string>();
        using (var scope = torch.NewDisposeScope())
        {
            var pairs = prune.EdgeMask.nonzero().contiguous().data<long>().ToArray(); // (target, source), row-major
            var weights = g.AdjacencyMatrix.contiguous().data<float>();
            long n = g.NNodes;
            for (int e = 0; e < pairs.Length; e += 2)
            {
                int dst = (int)pairs[e], src = (int)pairs[e + 1];
                if (!nodes.TryGetValue(src, out var s) || !nodes.TryGetValue(dst, out var d)) continue;
                links.Add(new GraphLink(s.NodeId, d.NodeId, weights[dst * n + src]));
                connected.Add(s.NodeId);
                connected.Add(d.NodeId);
            }
        }
        var used = nodes.OrderBy(kv => kv.Key).Select(kv => kv.Value)
            .Where(nd => connected.Contains(nd.NodeId) || nd.FeatureType is "embedding" or "logit").ToList();

        var meta = new GraphMetadata(slug, g.Scan, [], g.PromptTokens, g.InputString, nodeThreshold, 1);
        var q = new GraphQParams([], [], "both", "", "");
        return new GraphDocument(meta, q, used, links);
    }

    public static string Serialize(GraphDocument doc) => JsonSerializer.Serialize(doc, GraphJsonContext.Default.GraphDocument);

    /// <summary>Reads a graph.json; a file that is not one is refused naming it.</summary>
    /// <exception cref="GraphFileException">Not JSON, or not circuit-tracer's graph (metadata, qParams, nodes, links).</exception>
    public static GraphDocument Parse(string json, string path)
    {
        GraphDocument? doc;
        try { doc = JsonSerializer.Deserialize(json, GraphJsonContext.Default.GraphDocument); }
        catch (JsonException e) { throw new GraphFileException(path, $"is not a circuit-tracer graph.json ({e.Message})."); }
        return doc is { Metadata: not null, QParams: not null, Nodes: not null, Links: not null } && doc.Nodes.All(n => n is not null) && doc.Links.All(l => l is not null)
            ? doc : throw new GraphFileException(path, "is not a circuit-tracer graph.json: it needs an object with metadata, qParams, nodes and links.");
    }
}
