using System.Text.Json.Nodes;
using SharpLens.Reports;

namespace SharpLens.BrowserTests;

/// <summary>
/// A small graph in circuit-tracer's graph.json format whose every node, influence and edge is known:
/// token "A" → feature L0#5 → feature L1#7 → logit "C", plus nodes the default 0.8 threshold prunes (L1#9 at 0.9,
/// the error at 0.85) and a feature active at all three positions (L0#3, hidden as the frontend hides it).
/// </summary>
static class KnownGraph
{
    public static readonly string[] Tokens = ["<bos>", "A", "is"];

    public static JsonObject Json()
    {
        var nodes = new JsonArray
        {
            Feature(0, 5, 1, influence: 0.30, activation: 2.0),
            Feature(1, 7, 2, influence: 0.50, activation: 1.25),
            Feature(1, 9, 2, influence: 0.90, activation: 0.1),
            Feature(0, 3, 0, influence: 0.10, activation: 5.0),
            Feature(0, 3, 1, influence: 0.11, activation: 5.0),
            Feature(0, 3, 2, influence: 0.12, activation: 5.0),
            Node("0_-1_2", -1, "0", 2, "mlp reconstruction error", "0_-1-2", 0.85),
            Node("E_10_0", 0, "E", 0, "embedding", "E_10-0", 0.95),
            Node("E_11_1", 1, "E", 1, "embedding", "E_11-1", 0.2),
            Node("E_12_2", 2, "E", 2, "embedding", "E_12-2", 0.6),
            Logit(),
        };
        var links = new JsonArray
        {
            Link("E_11_1", "0_5_1", 2.0),
            Link("0_5_1", "1_7_2", 1.5),
            Link("0_-1_2", "1_7_2", 0.3),
            Link("E_12_2", "1_7_2", -0.5),
            Link("1_7_2", "3_42_2", 3.0),
            Link("1_9_2", "3_42_2", 0.2),
            Link("0_3_1", "1_7_2", 0.05),
        };
        return new JsonObject
        {
            ["metadata"] = new JsonObject
            {
                ["slug"] = "known-two-hop", ["scan"] = "test-transcoders", ["transcoder_list"] = new JsonArray(),
                ["prompt_tokens"] = new JsonArray(Tokens.Select(t => (JsonNode)t!).ToArray()),
                ["prompt"] = "<bos>A is", ["node_threshold"] = 0.8, ["schema_version"] = 1,
            },
            ["qParams"] = new JsonObject
            {
                ["pinnedIds"] = new JsonArray(), ["supernodes"] = new JsonArray(), ["linkType"] = "both",
                ["clickedId"] = "", ["sg_pos"] = "",
            },
            ["nodes"] = nodes,
            ["links"] = links,
        };
    }

    /// <summary>circuit-tracer's feature id: the Cantor pairing of layer and feature index.</summary>
    public static long Cantor(int layer, int feature) => (long)(layer + feature) * (layer + feature + 1) / 2 + feature;

    static JsonObject Feature(int layer, int feature, int pos, double influence, double activation) =>
        Node($"{layer}_{feature}_{pos}", Cantor(layer, feature), layer.ToString(), pos, "cross layer transcoder", $"{layer}_{feature}-0", influence, activation);

    static JsonObject Logit()
    {
        var node = Node("3_42_2", 42, "3", 2, "logit", "3_42_2", 0.0);
        node["token_prob"] = 0.9; node["is_target_logit"] = true; node["clerp"] = "Output \"C\" (p=0.900)";
        return node;
    }

    static JsonObject Node(string id, long feature, string layer, int ctx, string type, string js, double influence, double? activation = null) => new()
    {
        ["node_id"] = id, ["feature"] = feature, ["layer"] = layer, ["ctx_idx"] = ctx, ["feature_type"] = type,
        ["token_prob"] = 0.0, ["is_target_logit"] = false, ["run_idx"] = 0, ["reverse_ctx_idx"] = 0, ["jsNodeId"] = js,
        ["clerp"] = "", ["influence"] = influence, ["activation"] = activation,
    };

    static JsonObject Link(string source, string target, double weight) => new() { ["source"] = source, ["target"] = target, ["weight"] = weight };

    /// <summary>A dashboard for feature L0#5, so clicking it shows contexts and logit effects.</summary>
    public static Dictionary<long, GraphFeatureDetails> Features() => new()
    {
        [Cantor(0, 5)] = new GraphFeatureDetails("test-transcoders/0", 5,
            [new GraphFeatureQuantile("Top activations", [
                new GraphFeatureExample([0f, 3.5f, 0.5f], 1, false, ["The", " letter", " A"]),
                new GraphFeatureExample([0f, 0f, 2.0f], 2, false, ["from", " A", " to"])])],
            TopLogits: [" B", " b"], BottomLogits: [" Z"], ActMin: 0f, ActMax: 3.5f,
            QuantileValues: [0f, 1f, 3.5f], Histogram: [4f, 2f, 1f, 1f], ActivationFrequency: 0.0125f),
    };
}
