//:header
// Chapter 5 — Attribution graphs: read one, then test it with an intervention
//
// A transcoder replaces each MLP by sparse features (encoder, ReLU, decoder) plus an error term. With the attention
// patterns, the norms' scales and the errors frozen, everything left is linear, so the logits are a sum of direct
// effects: each active feature, error and token is a node, and the graph's edge A[target, source] is how much the
// source adds to the target along direct paths (Ameisen et al. 2025, "Circuit tracing"; circuit-tracer's maths,
// which SharpLens's Attributor follows). You compute one edge by hand, the normalised adjacency and each node's
// influence on the logits (what pruning ranks by), find the feature that pushes the top logit up most, and then test
// what the graph claims: set that feature with a hook and see the logit move by exactly what its edge predicts.
//
// The subject is a seeded random 3-layer model (no LayerNorm) with random transcoders, about half of whose features
// fire: its graph is exact, so every number must match. Node order in a graph: the active features (by layer,
// position, feature), then one error node per (layer, position), one token node per position, then the logits
// (the most probable first).
//
//     dotnet run chapter5.cs               (checks every exercise; writes chapter5.html with your plots)
//     sharplens learn check chapter5.cs    (the same checks, without a build)
//
// Multiply with x.MatMul(y) (SharpLens's checked matmul), not TorchSharp's x.matmul(y): on a shape mismatch
// TorchSharp's matmul ends the whole program.

using SharpLens;
using SharpLens.Learn;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

return Chapter5.Check(args, new Chapter5.Exercises
{
    DirectLogitEdge = Exercises.DirectLogitEdge,
    NormalizeMatrix = Exercises.NormalizeMatrix,
    Influence = Exercises.Influence,
    TopFeatureForLogit = Exercises.TopFeatureForLogit,
    SteerFeature = Exercises.SteerFeature,
});

static class Exercises
{
    // ── 1. DirectLogitEdge ───────────────────────────────────────────────────────────────────────────────────────
    // A feature in the last layer, at the last position, writes activation × its decoder row (W_dec row [d_model])
    // into the residual stream, and nothing lies between it and the unembedding (this model has no final LayerNorm).
    // A logit node in the graph is the demeaned logit, logit_t − mean over the vocabulary, so it reads the residual
    // stream along W_U[:, t] − W_U.mean([1]). The edge is activation × row · that direction. W_U [d_model, d_vocab].
    // → a scalar tensor.
    public static Tensor DirectLogitEdge(double activation, Tensor decoderRow, Tensor W_U, long token)
    {
        //> solution
        var direction = W_U[.., token] - W_U.mean([1]);                      // [d_model]
        return activation * decoderRow.dot(direction);
        //< solution
    }

    // ── 2. NormalizeMatrix ───────────────────────────────────────────────────────────────────────────────────────
    // Influence ignores signs and scale: Â = |A| / (each row's sum of |A|), so every node's incoming edges sum to 1
    // (A is [target, source]: a row holds a node's incoming edges). A row of zeros (a token has no inputs) must stay
    // zeros: clamp the sums to at least 1e-10. Do not change A in place.
    public static Tensor NormalizeMatrix(Tensor A)
    {
        //> solution
        var magnitude = A.abs();
        return magnitude / magnitude.sum(1, keepdim: true).clamp_min(1e-10);
        //< solution
    }

    // ── 3. Influence ─────────────────────────────────────────────────────────────────────────────────────────────
    // w [N] weights the logit nodes by their probabilities (zeros elsewhere). A node's influence on the logits is the
    // sum over paths of every length: w Â + w Â² + w Â³ + … (w a row vector). The graph has no cycles, so the product
    // becomes exactly zero after at most N steps: loop until (current != 0).any() is false. → [N].
    public static Tensor Influence(Tensor normalized, Tensor w)
    {
        //> solution
        var current = w.MatMul(normalized);
        var influence = current.clone();
        while (current.any().item<bool>())
        {
            current = current.MatMul(normalized);
            influence += current;
        }
        return influence;
        //< solution
    }

    // ── 4. TopFeatureForLogit ────────────────────────────────────────────────────────────────────────────────────
    // Which feature pushes a logit up most directly? The edges into node `logit` are its row A[logit, :]; the feature
    // nodes are columns 0 … nFeatures − 1. Return the feature node with the largest (most positive) edge.
    public static int TopFeatureForLogit(Tensor A, int nFeatures, int logit)
    {
        //> solution
        return (int)A[logit, ..nFeatures].argmax().item<long>();
        //< solution
    }

    // ── 5. SteerFeature ──────────────────────────────────────────────────────────────────────────────────────────
    // Test the graph: set a feature at (layer, pos) to a new activation. Its decoder writes activation × row into
    // its layer's MLP output (hook "blocks.{layer}.hook_mlp_out", [1, pos, d_model]), so changing the activation by
    // delta adds delta × row there, at that position only. Run the model with that hook
    // (model.RunWithHooks(tokens, [(name, (y, hook) => …)]); return a new tensor from the hook, e.g. y.clone()
    // changed) and return its logits [1, pos, d_vocab]. The check compares them with SharpLens's FeatureInterventions,
    // and the top logit's move with what the graph's edge predicts.
    public static Tensor SteerFeature(HookedTransformer model, Tensor tokens, int layer, int pos, Tensor decoderRow, double delta)
    {
        //> solution
        using var noGrad = torch.no_grad();
        return model.RunWithHooks(tokens, [($"blocks.{layer}.hook_mlp_out", (y, _) =>
        {
            var z = y.clone();
            z[0, pos] += delta * decoderRow;
            return z;
        })]);
        //< solution
    }
}
