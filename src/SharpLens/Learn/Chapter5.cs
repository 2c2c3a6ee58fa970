using System.Runtime.CompilerServices;
using SharpLens.Attribution;
using SharpLens.Models;
using SharpLens.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>What chapter 5 reads a graph of: a model with transcoders, and a prompt.</summary>
/// <param name="Replacement">The model and its transcoders (its replacement model).</param>
/// <param name="Prompt">The prompt's tokens, [pos] int64.</param>
public sealed record AttributionSubject(ReplacementModel Replacement, Tensor Prompt);

/// <summary>
/// Chapter 5, attribution graphs: the learner reads the graph of a model with transcoders (circuit-tracer's
/// maths, <see cref="Attributor"/>): one feature→logit edge by hand, the normalised adjacency and node influence
/// (<see cref="GraphPruning"/>), the feature with the largest edge into the top logit, and then tests the graph
/// with an intervention: setting that feature with a hook must change the logits exactly as
/// <see cref="FeatureInterventions"/> does, and the top logit by what the edge predicted.
/// </summary>
/// <remarks>
/// The subject is swappable (<see cref="Subject"/>). The default is a seeded random 3-layer model (no LayerNorm, so a
/// last-layer feature's edge to a logit is exactly activation × decoder row · demeaned unembedding) with random
/// per-layer transcoders, about half of whose features fire, as the attribution tests use: its graph is known to be
/// exact. The two-hop organism's graph does not contain its path yet (README, attribution section); a subject with a
/// final LayerNorm would also need its frozen scale in the by-hand edge.
/// </remarks>
public static class Chapter5
{
    public const int Number = 5;

    /// <summary>The model, transcoders and prompt the checks read; null: <see cref="RandomSubject"/>.</summary>
    public static Func<AttributionSubject>? Subject { get; set; }

    public sealed class Exercises
    {
        public required Func<double, Tensor, Tensor, long, Tensor> DirectLogitEdge { get; init; }            // (activation, W_dec row [d_model], W_U [d_model, d_vocab], token) → []
        public required Func<Tensor, Tensor> NormalizeMatrix { get; init; }                                 // A [N, N] → Â [N, N]
        public required Func<Tensor, Tensor, Tensor> Influence { get; init; }                               // (Â [N, N], w [N]) → [N]
        public required Func<Tensor, int, int, int> TopFeatureForLogit { get; init; }                       // (A [N, N], n_features, logit node) → feature node
        public required Func<HookedTransformer, Tensor, int, int, Tensor, double, Tensor> SteerFeature { get; init; } // (model, tokens [1, pos], layer, pos, W_dec row, delta) → logits [1, pos, d_vocab]
    }

    public static readonly string[] ExerciseNames = ["DirectLogitEdge", "NormalizeMatrix", "Influence", "TopFeatureForLogit", "SteerFeature"];

    public static int Check(string[] args, Exercises learner, [CallerFilePath] string? file = null) =>
        Checker.Run(Number, args, ExerciseNames, () => Build(learner), file);

    /// <summary>
    /// A seeded random 3-layer model (d_model 32, 4 heads, d_vocab 40, no LayerNorm, random biases) with random
    /// per-layer ReLU transcoders (d_transcoder 16) reading hook_resid_mid and writing hook_mlp_out, and a 6-token prompt.
    /// </summary>
    public static AttributionSubject RandomSubject()
    {
        const int layers = 3, dModel = 32, dTc = 16;
        var config = new ModelConfig
        {
            DModel = dModel, NLayers = layers, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 40, NCtx = 24,
            ActFn = Activation.GeluNew, NormalizationType = Normalization.None, ModelName = "learn-attribution-random",
        }.Validated();
        var model = new HookedTransformer(config, seed: 11);
        var g = new Generator(111);
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (!name.Split('.')[^1].StartsWith("W_", StringComparison.Ordinal)) p.copy_(0.1 * randn(p.shape, generator: g)); // random biases too
        model.eval();
        var wEnc = randn(layers, dTc, dModel, generator: g) / Math.Sqrt(dModel);
        var bEnc = 0.1 * randn(layers, dTc, generator: g);
        var bDec = 0.1 * randn(layers, dModel, generator: g);
        var wDec = Enumerable.Range(0, layers).Select(_ => 0.3 * randn(dTc, 1, dModel, generator: g) / Math.Sqrt(dTc)).ToArray();
        var set = new TranscoderSet(false, wEnc, bEnc, bDec, wDec, TranscoderActivation.Relu, null, 0, null, "hook_resid_mid", "hook_mlp_out", "learn-random");
        return new AttributionSubject(new ReplacementModel(model, set), tensor(new long[] { 0, 5, 17, 3, 29, 11 }));
    }

    static IReadOnlyList<Exercise> Build(Exercises learner)
    {
        var subject = Subject?.Invoke() ?? RandomSubject();
        var rm = subject.Replacement;
        var model = rm.Model;
        var tc = rm.Transcoders;
        var graph = Attributor.Attribute(rm, subject.Prompt);
        var ids = graph.InputTokens;                                                        // [pos]
        int L = graph.NLayers, last = graph.NPos - 1, top = graph.LogitStart;            // top: the most probable logit's node
        long topToken = graph.LogitTargets[0];
        var A = graph.AdjacencyMatrix;                                                      // [N, N], row target, column source
        var W_U = model.unembed.W_U.detach();                                               // [d_model, d_vocab]
        var g = new Generator(5);

        // The last-layer features at the last position: their edge to a logit is direct (nothing lies between them and the unembedding).
        var lastLayer = Enumerable.Range(0, graph.NFeatures).Where(n => graph.FeatureOf(n) is var (l, p, _) && l == L - 1 && p == last).ToList();
        if (lastLayer.Count == 0) throw new SharpLensInternalException("Chapter 5's subject has no active last-layer feature at the last position.");
        int edgeNode = lastLayer.MaxBy(n => Math.Abs(A[top, n].item<float>()));
        double Activation(int node) => graph.ActivationValues[graph.SelectedFeatures[node]].item<float>();
        Tensor DecoderRow(int node) { var (l, _, f) = graph.FeatureOf(node); return tc.W_dec[l][f, 0].detach(); } // [d_model] (what it writes to its own layer's MLP output)

        Tensor Edge(double a, Tensor row, Tensor wu, long token, bool demean = true, bool byActivation = true, bool demeanOverModel = false)
        {
            var u = wu[.., token] - (demeanOverModel ? wu[.., token].mean() : demean ? wu.mean([1]) : zeros_like(wu[.., token]));
            return (byActivation ? a : 1.0) * row.to(ScalarType.Float64).dot(u.to(ScalarType.Float64));
        }
        Tensor Steered(Tensor tokens, int layer, int pos, Tensor row, double delta, bool everyPosition = false, bool replace = false)
        {
            using var noGrad = no_grad();
            return model.RunWithHooks(tokens, [($"blocks.{layer}.hook_mlp_out", (y, _) =>
            {
                var z = y.clone();
                if (replace) z[0, pos] = delta * row;
                else if (everyPosition) z[0] += delta * row;
                else z[0, pos] += delta * row;
                return z;
            })]);
        }

        return
        [
            new("DirectLogitEdge", "one edge by hand: a last-layer feature's direct effect on a logit = activation × decoder row · demeaned unembedding", [], () =>
            {
                // Random inputs first, then the graph's own edge.
                var row = randn(32, generator: g);
                var wu = randn(32, 10, generator: g);
                var actual = learner.DirectLogitEdge(0.7, row.clone(), wu.clone(), 3);
                Expect.Close("DirectLogitEdge(0.7, random row, random W_U, 3)", actual?.to(ScalarType.Float64), Edge(0.7, row, wu, 3), atol: 1e-5, rtol: 1e-4,
                    factorHint: "Multiply by the feature's activation (the edge is the activation times the decoder row's effect).", bugs:
                    [
                        new Bug("Demean the unembedding over the vocabulary: the logit node is logit − mean logit, so read W_U[:, t] − W_U.mean([1]).", () => Edge(0.7, row, wu, 3, demean: false)),
                        new Bug("Demean over the vocabulary (W_U.mean([1]), one mean per residual direction), not over W_U[:, t]'s own entries.", () => Edge(0.7, row, wu, 3, demeanOverModel: true)),
                    ]);
                var (layer, pos, feature) = graph.FeatureOf(edgeNode);
                double a = Activation(edgeNode);
                var yours = learner.DirectLogitEdge(a, DecoderRow(edgeNode), W_U.clone(), topToken);
                var expected = A[top, edgeNode].to(ScalarType.Float64);
                Expect.Close($"DirectLogitEdge for feature {feature} (layer {layer}, position {pos}) and the top logit (token {topToken})", yours?.to(ScalarType.Float64), expected, atol: 1e-5, rtol: 1e-4,
                    factorHint: "Multiply by the feature's activation.", bugs:
                        new Bug("Demean the unembedding over the vocabulary (W_U[:, t] − W_U.mean([1])).", () => Edge(a, DecoderRow(edgeNode), W_U, topToken, demean: false)));
            }),
            new("NormalizeMatrix", "the normalised adjacency Â = |A| / (each row's sum of |A|): every node's incoming edges sum to 1", [], () =>
            {
                var random = randn(6, 6, generator: g);
                random[2] = 0;                                                               // a node with no incoming edge
                foreach (var (what, matrix) in new[] { ("a random 6×6 matrix with a zero row", random), ("the graph's adjacency matrix", A) })
                {
                    var before = matrix.clone();
                    var actual = learner.NormalizeMatrix(matrix);
                    Expect.Unchanged("A", before, matrix);
                    Expect.Close($"NormalizeMatrix({what})", actual, GraphPruning.NormalizeMatrix(matrix), atol: 1e-6, rtol: 1e-5, bugs:
                    [
                        new Bug("Take absolute values first: Â = |A| / rowsum|A| (negative edges count as influence too).", () => matrix / matrix.abs().sum(1, keepdim: true).clamp_min(1e-10)),
                        new Bug("Take absolute values first: Â = |A| / rowsum|A| (negative edges count as influence too, and a row's plain sum can be negative or zero).", () => matrix / matrix.sum(1, keepdim: true).clamp_min(1e-10)),
                        new Bug("Normalise each row (a node's incoming edges, A[target, :]), not each column: sum over dimension 1.", () => matrix.abs() / matrix.abs().sum(0, keepdim: true).clamp_min(1e-10)),
                    ]);
                    if (actual is not null && !actual.isfinite().all().item<bool>())
                        throw new CheckFailure($"NormalizeMatrix({what}) has NaN: a row of zeros divides 0 by 0. Clamp the row sums to at least 1e-10.");
                }
            }),
            new("Influence", "node influence on the logits: w Â + w Â² + … until the product is zero (the graph is a DAG)", [], () =>
            {
                // A random DAG (strictly lower-triangular: edges only from earlier to later nodes) with logit weights on the last two nodes.
                var dag = GraphPruning.NormalizeMatrix(randn(7, 7, generator: g).tril(-1));
                var w = zeros(7); w[5] = 0.7f; w[6] = 0.3f;
                var normalized = GraphPruning.NormalizeMatrix(A);
                var weights = GraphPruning.LogitWeights(graph);
                foreach (var (what, a, ww) in new[] { ("a random 7-node DAG", dag, w), ("the graph", normalized, weights) })
                {
                    var actual = learner.Influence(a.clone(), ww.clone());
                    var expected = GraphPruning.Influence(a, ww);
                    Expect.Close($"Influence({what})", actual, expected, atol: 1e-6, rtol: 1e-4, bugs:
                    [
                        new Bug("Start the sum at w Â, not at w: the logits' own weights are not influence (circuit-tracer adds them only when pruning edges).", () => expected + ww),
                        new Bug("Keep multiplying: influence counts paths of every length, w Â + w Â² + w Â³ + … until the product is zero (you stopped after w Â).", () => ww.MatMul(a)),
                        new Bug("Multiply from the left: w Â (the row vector w times Â; Â is [target, source]), not Â w.", () => GraphPruning.Influence(a.t().contiguous(), ww)),
                    ]);
                }
                var yours = learner.Influence(normalized.clone(), weights.clone())[..graph.NFeatures].sort(descending: true).Values;
                Checker.Plot($"Your influence of each of the graph's {graph.NFeatures} feature nodes on the logits, largest first: a few features carry most of it",
                    LearnPlots.Lines([("influence", LearnPlots.Values(yours))], "feature node (sorted)", "influence", yMin: 0));
            }),
            new("TopFeatureForLogit", "the feature with the largest (most positive) direct edge into a logit", [], () =>
            {
                int expected = (int)A[top, ..graph.NFeatures].argmax().item<long>();
                int actual = learner.TopFeatureForLogit(A.clone(), graph.NFeatures, top);
                if (actual == expected) return;
                int column = (int)A[..graph.NFeatures, top].argmax().item<long>();
                int any = (int)A[top].argmax().item<long>();
                int absolute = (int)A[top, ..graph.NFeatures].abs().argmax().item<long>();
                string Name(int n) => n < graph.NFeatures ? $"feature node {n}" : n < graph.TokenStart ? $"node {n} (an error node)" : n < graph.LogitStart ? $"node {n} (a token node)" : $"node {n} (a logit node)";
                if (actual >= graph.NFeatures || (actual == any && any != expected))
                    throw new CheckFailure($"TopFeatureForLogit gave {Name(actual)}: look only at the feature nodes, columns 0 … n_features − 1 (error and token nodes come after them).");
                if (actual == column && column != expected)
                    throw new CheckFailure($"TopFeatureForLogit gave {Name(actual)}: the edges into the logit are its row, A[logit, :] (A is [target, source]); you read its column.");
                if (actual == absolute && absolute != expected)
                    throw new CheckFailure($"TopFeatureForLogit gave {Name(actual)}, whose edge is the largest in size but negative ({A[top, actual].item<float>():g4}): take the most positive edge, the feature that pushes the logit up.");
                throw new CheckFailure($"TopFeatureForLogit gave {Name(actual)} (edge {(actual >= 0 && actual < graph.NNodes ? A[top, actual].item<float>() : double.NaN):g4}) but the largest edge into the logit is from feature node {expected} ({A[top, expected].item<float>():g4}).");
            }),
            new("SteerFeature", "test the graph with an intervention: set a feature by adding (new − old) × its decoder row to its layer's MLP output", [], () =>
            {
                var (layer, pos, feature) = graph.FeatureOf(edgeNode);
                double a = Activation(edgeNode), target = 3 * a;
                var row = DecoderRow(edgeNode);
                var tokens = ids.unsqueeze(0);                                             // [1, pos]
                var actual = learner.SteerFeature(model, tokens.clone(), layer, pos, row.clone(), target - a);
                using var library = FeatureInterventions.Run(rm, ids, [FeatureIntervention.Set(layer, pos, feature, target)]);
                Expect.Close($"SteerFeature(feature {feature} of layer {layer} at position {pos} set from {a:0.###} to {target:0.###})", actual, library.Logits.unsqueeze(0), atol: 1e-4, rtol: 1e-4, bugs:
                [
                    new Bug($"Add the change at the feature's position only (position {pos}): z[0, pos] += delta * row. You added it at every position.", () => Steered(tokens, layer, pos, row, target - a, everyPosition: true)),
                    new Bug("Add delta × row to the MLP output there, do not replace the output with it: the rest of what the MLP wrote stays.", () => Steered(tokens, layer, pos, row, target - a, replace: true)),
                    new Bug("Scale the decoder row by delta, the change of the activation (new − old).", () => Steered(tokens, layer, pos, row, 1.0)),
                ]);
                // The graph's prediction: the demeaned top logit moves by (new/old − 1) × the edge.
                using var clean = FeatureInterventions.Run(rm, ids, []);
                Tensor Demeaned(Tensor logits) => logits[-1, topToken] - logits[-1].mean();
                double measured = (Demeaned(actual![0]) - Demeaned(clean.Logits)).item<float>();
                double predicted = (target / a - 1) * A[top, edgeNode].item<float>();
                if (Math.Abs(measured - predicted) > 1e-3 * Math.Max(1, Math.Abs(predicted)))
                    throw new CheckFailure($"the top logit (demeaned) moved by {measured:g4}, but the graph's edge predicts {predicted:g4}.");
                var edges = A[top, ..graph.NFeatures];
                Checker.Plot($"Direct edges of the graph's features into the top logit (token {topToken}); setting feature node {edgeNode} to 3× its activation moved it by {measured:0.###}, as the edge predicted ({predicted:0.###})",
                    LearnPlots.Lines([("edge into the top logit", LearnPlots.Values(edges))], "feature node", "edge weight"));
            }),
        ];
    }
}
