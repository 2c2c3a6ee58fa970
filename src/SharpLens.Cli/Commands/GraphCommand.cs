using System.CommandLine;
using System.Globalization;
using SharpLens.Attribution;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens graph`: an attribution graph of one prompt (circuit-tracer's method), written as graph.json + graph.npz.</summary>
public static class GraphCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var transcoders = new Option<string>("--transcoders") { Description = "A transcoder folder in circuit-tracer's layout: config.yaml (model_kind, feature_input_hook, feature_output_hook) with layer_{i}.safetensors (per-layer), W_enc_{i}/W_dec_{i}.safetensors (cross-layer), or the files it lists (Gemma Scope params.npz, Gemma Scope 2).", Required = true };
        var outOption = new Option<string>("--out") { Description = "Folder for graph.json (pruned, circuit-tracer's frontend format), graph-metadata.json and graph.npz (the unpruned graph).", Required = true };
        var nodeThreshold = new Option<double>("--node-threshold") { Description = "Keep the nodes holding this share of the total influence on the logits, in (0, 1].", DefaultValueFactory = _ => 0.8 };
        var edgeThreshold = new Option<double>("--edge-threshold") { Description = "Keep the edges holding this share of the edge influence, in (0, 1].", DefaultValueFactory = _ => 0.98 };
        var maxFeatureNodes = new Option<int?>("--max-feature-nodes") { Description = "At most this many feature nodes, visited in order of estimated influence (default: every active feature)." };
        var maxNLogits = new Option<int>("--max-n-logits") { Description = "At most this many logit nodes.", DefaultValueFactory = _ => 10 };
        var desiredLogitProb = new Option<double>("--desired-logit-prob") { Description = "Add logit nodes, most probable first, until their probabilities sum to this.", DefaultValueFactory = _ => 0.95 };
        var batchSize = new Option<int>("--batch-size") { Description = "Graph rows per backward pass (the forward pass runs this many copies of the prompt); more is faster and needs more memory.", DefaultValueFactory = _ => 512 };
        var slug = new Option<string>("--slug") { Description = "The graph's name in graph.json's metadata.", DefaultValueFactory = _ => "graph" };
        var command = new Command("graph",
            "Attribution graph of one prompt, as circuit-tracer computes it: the model's MLPs are replaced by transcoders, attention " +
            "patterns and norm scales are frozen, and every direct effect between features, MLP errors, tokens and the top logits is " +
            "computed exactly. The model is used unprocessed (no LayerNorm folding), as transcoders are trained. A token that is not " +
            "BOS/EOS/PAD at position 0 gets BOS put before it; position 0 carries no features or errors.\n\n" +
            "Example: sharplens graph --model ./gpt2 --transcoders ./gpt2-transcoders --prompt \"The capital of France is\" --out graphs/paris");
        model.AddTo(command);
        prompt.AddTo(command);
        foreach (var o in new Option[] { transcoders, outOption, nodeThreshold, edgeThreshold, maxFeatureNodes, maxNLogits, desiredLogitProb, batchSize, slug })
            command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            var files = new GraphFileOptions { NodeThreshold = parse.GetValue(nodeThreshold), EdgeThreshold = parse.GetValue(edgeThreshold), Slug = parse.GetValue(slug)! };
            var options = new AttributionOptions
            {
                MaxNLogits = parse.GetValue(maxNLogits), DesiredLogitProb = parse.GetValue(desiredLogitProb),
                BatchSize = parse.GetValue(batchSize), MaxFeatureNodes = parse.GetValue(maxFeatureNodes),
            };
            // Every setting is checked before the model is loaded, so a typo costs nothing.
            GraphFiles.CheckSettings(options, files);
            if (parse.GetValue(prompt.Prompt) is { } text && string.IsNullOrWhiteSpace(text))
                throw new CliArgumentException("--prompt is empty: give the text whose next token the graph explains.");
            using var set = TranscoderFiles.Load(parse.GetValue(transcoders)!);
            using var m = ModelArguments.Load(parse.GetValue(model.Model)!, noProcessing: true, parse.GetValue(model.OrganismCache));
            var rm = new ReplacementModel(m, set);
            using var scope = torch.NewDisposeScope();
            var tokens = prompt.Read(parse, m);
            var summary = GraphFiles.AttributeAndWrite(rm, tokens, parse.GetValue(outOption)!, options, files);
            var c = CultureInfo.InvariantCulture;
            Console.WriteLine($"{summary.ActiveFeatures} active features, {summary.Features} in the graph; {summary.Nodes} nodes in all.");
            Console.WriteLine($"Pruned (node {files.NodeThreshold.ToString(c)}, edge {files.EdgeThreshold.ToString(c)}): {summary.KeptNodes} nodes, {summary.KeptLinks} links.");
            Console.WriteLine($"Replacement score {summary.ReplacementScore.ToString("0.000", c)}, completeness score {summary.CompletenessScore.ToString("0.000", c)}.");
            Console.WriteLine($"Wrote {summary.JsonPath} and {summary.NpzPath}");
            return 0;
        }));
        return command;
    }
}
