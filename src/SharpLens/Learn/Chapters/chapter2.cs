//:header
// Chapter 2 — Hooks, caches and induction
//
// The induction organism is a 2-layer attention-only transformer SharpLens trains on sequences that repeat
// themselves (BOS, r₁…rₙ, r₁…rₙ). It learns the induction circuit: a previous-token head in layer 0 and induction
// heads in layer 1 that attend to the token after an earlier copy of the current one and copy it. You find them
// with the tools of TransformerLens: the activation cache, hooks, direct logit attribution and ablations. Every
// number you compute must equal the library's. (After ARENA's chapter 1.2, "Intro to mech interp".)
//
//     dotnet run chapter2.cs               (checks every exercise; the first run trains the organism, then it is cached)
//     sharplens learn check chapter2.cs    (the same checks, without a build)
//
// The cache speaks TransformerLens: cache["pattern", l] is blocks.l.attn.hook_pattern [batch, head, query, key];
// cache["q", l], cache["k", l], cache["z", l] are [batch, pos, head, d_head]; cache["hook_embed"] and
// cache["hook_pos_embed"] are [batch, pos, d_model]. model.blocks[l].attn.W_O is [n_heads, d_head, d_model];
// model.unembed.W_U is [d_model, d_vocab]. model.Config.NLayers, .NHeads, .DHead give the sizes.
//
// Multiply with x.MatMul(y) (SharpLens's checked matmul), not TorchSharp's x.matmul(y): on a shape mismatch
// TorchSharp's matmul ends the whole program, while MatMul throws an exception that names both shapes, and the
// check tells you which exercise and line.

using SharpLens;
using SharpLens.Hooks;
using SharpLens.Learn;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

return Chapter2.Check(args, new Chapter2.Exercises
{
    PatternFromQK = Exercises.PatternFromQK,
    PreviousTokenScores = Exercises.PreviousTokenScores,
    InductionScores = Exercises.InductionScores,
    LogitAttribution = Exercises.LogitAttribution,
    AblationScores = Exercises.AblationScores,
});

static class Exercises
{
    // ── 1. PatternFromQK ─────────────────────────────────────────────────────────────────────────────────────────
    // Verify the cache: from a layer's queries and keys q, k [batch, pos, head, d_head] recompute its attention
    // pattern [batch, head, query, key]: q·k / √d_head, the causal mask, softmax over the keys.
    public static Tensor PatternFromQK(Tensor q, Tensor k)
    {
        //> solution
        long pos = q.shape[1];
        var scores = einsum("bqhd,bkhd->bhqk", q, k) / Math.Sqrt(q.shape[^1]);     // [batch, head, query, key]
        var future = torch.ones(pos, pos, dtype: ScalarType.Bool).triu(1);
        return scores.masked_fill(future, double.NegativeInfinity).softmax(-1);
        //< solution
    }

    // ── 2. PreviousTokenScores ───────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] → [n_layers, n_heads]: for every head, its mean attention from each query q ≥ 1 to key
    // q − 1, over the batch. A head near 1 is a previous-token head.
    // Hint: var (_, cache) = model.RunWithCache(tokens); pattern.diagonal(-1, 2, 3) is [batch, head, pos − 1].
    public static Tensor PreviousTokenScores(HookedTransformer model, Tensor tokens)
    {
        //> solution
        var (_, cache) = model.RunWithCache(tokens);
        var perLayer = Enumerable.Range(0, model.Config.NLayers)
            .Select(l => cache["pattern", l].diagonal(-1, 2, 3).mean([0, 2]))      // [head]
            .ToList();
        return torch.stack(perLayer);                                              // [n_layers, n_heads]
        //< solution
    }

    // ── 3. InductionScores ───────────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] → [n_layers, n_heads], with hooks (no cache). A key k (1 ≤ k ≤ q) is an induction target of
    // query q when the token before it equals the current token: tokens[k − 1] = tokens[q]. A head's score is the
    // attention it puts on its query's targets, summed per query and averaged over the queries that have a target.
    // Hint: model.RunWithHooks(tokens, [(name, (pattern, hook) => { ...; return null; })]) calls the function with
    // each hooked activation; returning null leaves it unchanged. Names: ActivationCache.ActName("pattern", l).
    // What a hook computes is freed with the forward pass unless you keep it: t.detach().DetachFromDisposeScope().
    public static Tensor InductionScores(HookedTransformer model, Tensor tokens)
    {
        //> solution
        long batch = tokens.shape[0], pos = tokens.shape[1];
        var sameAsBefore = tokens.unsqueeze(2) == tokens[.., ..^1].unsqueeze(1);  // [batch, query, key − 1]
        var targets = torch.cat([torch.zeros(batch, pos, 1, dtype: ScalarType.Bool), sameAsBefore], 2)
                      & torch.ones(pos, pos, dtype: ScalarType.Bool).tril();      // [batch, query, key]
        var hasTarget = targets.any(-1);                                           // [batch, query]
        var scores = new Tensor[model.Config.NLayers];
        var hooks = Enumerable.Range(0, model.Config.NLayers).Select(l => (ActivationCache.ActName("pattern", l), (HookFunction)((pattern, _) =>
        {
            var mass = (pattern * targets.unsqueeze(1)).sum(-1);                   // [batch, head, query]
            // A hook's tensors are freed when its block's forward ends: keep this one beyond it.
            scores[l] = ((mass * hasTarget.unsqueeze(1)).sum([0, 2]) / hasTarget.sum()).detach().DetachFromDisposeScope();
            return null;
        })));
        model.RunWithHooks(tokens, hooks);
        return torch.stack(scores);                                                // [n_layers, n_heads]
        //< solution
    }

    // ── 4. LogitAttribution ──────────────────────────────────────────────────────────────────────────────────────
    // The organism has no LayerNorm, so its logits are a sum of what each part writes into the residual stream,
    // read along an unembedding direction. For every position p < pos − 1 and its correct next token t = tokens[p + 1]:
    //   column 0: (embed + pos_embed) · W_U[:, t]
    //   columns 1 … n_layers·n_heads: each head's output z·W_O (layer by layer, head by head) · W_U[:, t]
    //   last column: every layer's b_O · W_U[:, t], plus b_U[t]
    // → [batch, pos − 1, 2 + n_layers·n_heads]; each row sums to the logit of the correct token.
    public static Tensor LogitAttribution(HookedTransformer model, ActivationCache cache, Tensor tokens)
    {
        //> solution
        var answers = tokens[.., 1..];                                             // [batch, pos − 1]
        var directions = model.unembed.W_U.T[answers];                             // [batch, pos − 1, d_model]
        var columns = new List<Tensor> { einsum("bpm,bpm->bp", (cache["hook_embed"] + cache["hook_pos_embed"])[.., ..^1], directions) };
        var bias = model.unembed.b_U[answers];                                     // [batch, pos − 1]
        for (int l = 0; l < model.Config.NLayers; l++)
        {
            var attn = model.blocks[l].attn;
            var perHead = einsum("bphd,hdm->bphm", cache["z", l][.., ..^1], attn.W_O); // [batch, pos − 1, head, d_model]
            columns.AddRange(einsum("bphm,bpm->hbp", perHead, directions).unbind(0));
            bias = bias + einsum("m,bpm->bp", attn.b_O, directions);
        }
        columns.Add(bias);
        return torch.stack(columns, 2);                                            // [batch, pos − 1, 2 + L·H]
        //< solution
    }

    // ── 5. AblationScores ────────────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] → [n_layers, n_heads]: for every head, the model's loss (HookedTransformer.Loss(logits,
    // tokens), mean next-token cross-entropy) with that head's z set to 0, minus the loss with nothing removed.
    // Hint: a hook on ActivationCache.ActName("z", l) may return a new tensor; z[.., .., h] = 0 on a clone.
    public static Tensor AblationScores(HookedTransformer model, Tensor tokens)
    {
        //> solution
        double clean = HookedTransformer.Loss(model.Run(tokens), tokens).item<float>();
        var scores = torch.zeros(model.Config.NLayers, model.Config.NHeads, dtype: ScalarType.Float64);
        for (int l = 0; l < model.Config.NLayers; l++)
            for (int h = 0; h < model.Config.NHeads; h++)
            {
                int head = h;
                var logits = model.RunWithHooks(tokens, [(ActivationCache.ActName("z", l), (z, _) =>
                {
                    var ablated = z.clone();
                    ablated[.., .., head] = 0;
                    return ablated;
                })]);
                scores[l, h] = HookedTransformer.Loss(logits, tokens).item<float>() - clean;
            }
        return scores;
        //< solution
    }
}
