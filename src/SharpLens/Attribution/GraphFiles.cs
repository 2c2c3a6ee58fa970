using System.Text.Json;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>Pruning thresholds and the graph's name for graph.json.</summary>
public sealed record GraphFileOptions
{
    public double NodeThreshold { get; init; } = 0.8;
    public double EdgeThreshold { get; init; } = 0.98;
    /// <summary>metadata.slug; circuit-tracer's local server lists graphs by it.</summary>
    public string Slug { get; init; } = "graph";
    /// <summary>Also write graph.html, the offline viewer page (<see cref="Reports.GraphViewer"/>).</summary>
    public bool WriteViewer { get; init; } = true;
}

/// <summary>What <see cref="GraphFiles.Write"/> wrote and the graph's scores.</summary>
public sealed record GraphFilesSummary(string JsonPath, string NpzPath, int Nodes, int Features, int ActiveFeatures,
    int KeptNodes, int KeptLinks, double ReplacementScore, double CompletenessScore);

/// <summary>
/// A graph's files in one folder:
/// <code>
/// graph.json           circuit-tracer's frontend format, pruned (see <see cref="GraphJson"/>)
/// graph-metadata.json  {"graphs": [metadata]}, as circuit-tracer's local server lists graphs
/// graph.html           the offline viewer page for graph.json (Reports.GraphViewer)
/// graph.npz            the unpruned graph under circuit-tracer's Graph field names:
///   input_tokens int64 [n_pos], active_features int64 [n_active, 3] (layer, pos, feature), activation_values float32
///   [n_active], selected_features int64 [n_f], adjacency_matrix float32 [N, N] (rows targets, columns sources),
///   logit_targets int64 [n_logits] (vocabulary ids; d_vocab + i for custom target i), logit_probabilities float32
///   [n_logits], replacement_score float64 [], completeness_score float64 [], vocab_size int64 []
/// </code>
/// Every file is written to a hidden temporary folder inside DIR first and renamed into place only when all are complete.
/// </summary>
public static class GraphFiles
{
    public const string JsonFile = "graph.json", NpzFile = "graph.npz", MetadataFile = "graph-metadata.json", HtmlFile = "graph.html";

    /// <summary>
    /// The whole of <c>sharplens graph</c>: checks every setting, attributes the prompt and writes DIR's files. Nothing is
    /// written if any check or the attribution fails.
    /// </summary>
    public static GraphFilesSummary AttributeAndWrite(ReplacementModel rm, Tensor tokens, string folder,
        AttributionOptions? attribution = null, GraphFileOptions? files = null)
    {
        var f = files ?? new GraphFileOptions();
        CheckSettings(attribution ?? new AttributionOptions(), f);
        if (File.Exists(folder)) throw new AttributionArgumentException("out", $"{folder} is a file; give a folder for graph.json and graph.npz.");
        using var graph = Attributor.Attribute(rm, tokens, attribution);
        return Write(graph, folder, f);
    }

    /// <summary>Refuses unusable settings with a message naming the option, before any work.</summary>
    public static void CheckSettings(AttributionOptions attribution, GraphFileOptions files)
    {
        CheckThreshold(files.NodeThreshold, "node-threshold");
        CheckThreshold(files.EdgeThreshold, "edge-threshold");
        if (string.IsNullOrWhiteSpace(files.Slug) || files.Slug.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0)
            throw new AttributionArgumentException("slug", $"'{files.Slug}' cannot name a graph: use letters, digits, '-' or '_'.");
        Attributor.CheckOptions(attribution);
    }

    internal static void CheckThreshold(double value, string name)
    {
        if (!(value > 0 && value <= 1)) throw new AttributionArgumentException("--" + name, $"must be in (0, 1], got {value}; it is the share of total influence kept (default 0.8 for nodes, 0.98 for edges).");
    }

    public static GraphFilesSummary Write(AttributionGraph graph, string folder, GraphFileOptions? options = null)
    {
        var o = options ?? new GraphFileOptions();
        using var prune = GraphPruning.Prune(graph, o.NodeThreshold, o.EdgeThreshold); // checks the thresholds before anything is written
        var (replacement, completeness) = GraphPruning.Scores(graph);
        var doc = GraphJson.Build(graph, prune, o.Slug, o.NodeThreshold);
        string json = GraphJson.Serialize(doc);
        string meta = JsonSerializer.Serialize(new GraphMetadataList([doc.Metadata]), GraphJsonContext.Default.GraphMetadataList);

        folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(folder);
        string temporary = Path.Combine(folder, $".graph-{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temporary);
        try
        {
            File.WriteAllText(Path.Combine(temporary, JsonFile), json);
            File.WriteAllText(Path.Combine(temporary, MetadataFile), meta);
            if (o.WriteViewer) File.WriteAllText(Path.Combine(temporary, HtmlFile), Reports.GraphViewer.Render(json, source: Path.Combine(folder, JsonFile)));
            using (var scope = torch.NewDisposeScope())
                NumpyFiles.SaveNpz(Path.Combine(temporary, NpzFile),
                [
                    new("input_tokens", graph.InputTokens),
                    new("active_features", graph.ActiveFeatures),
                    new("activation_values", graph.ActivationValues),
                    new("selected_features", graph.SelectedFeatures),
                    new("adjacency_matrix", graph.AdjacencyMatrix),
                    new("logit_targets", torch.tensor(graph.LogitTargets)),
                    new("logit_probabilities", graph.LogitProbabilities),
                    new("replacement_score", torch.tensor(replacement, ScalarType.Float64)),
                    new("completeness_score", torch.tensor(completeness, ScalarType.Float64)),
                    new("vocab_size", torch.tensor(graph.VocabSize)),
                ]);
            foreach (var name in o.WriteViewer ? new[] { NpzFile, MetadataFile, JsonFile, HtmlFile } : [NpzFile, MetadataFile, JsonFile])
                File.Move(Path.Combine(temporary, name), Path.Combine(folder, name), overwrite: true);
        }
        finally
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        }
        return new GraphFilesSummary(Path.Combine(folder, JsonFile), Path.Combine(folder, NpzFile), graph.NNodes, graph.NFeatures,
            (int)graph.ActiveFeatures.shape[0], doc.Nodes.Count, doc.Links.Count, replacement, completeness);
    }
}
