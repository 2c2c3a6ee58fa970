//:header
// Chapter 1 — A transformer from scratch
//
// You write a GPT-2-style transformer piece by piece, in C#, on TorchSharp tensors: embeddings, positional embeddings,
// LayerNorm, the causal mask, attention, the MLP, a block, the unembedding, the whole model — whose logits must equal
// those of a SharpLens model with the same weights (within 1e-4) — and then sampling: top-k, top-p, greedy generation
// and a key/value cache. (After ARENA's chapter 1.1, "Transformer from scratch".)
//
// How to work: replace each `throw new NotImplementedException()` with your code, then run
//     dotnet run chapter1.cs               (checks every exercise; add names to check some: dotnet run chapter1.cs -- LayerNorm Attention)
//     sharplens learn check chapter1.cs    (the same checks, faster after an edit: no build)
// Each exercise is compared with SharpLens's own implementation on random inputs and on the cached activations of
// a small GPT-2-style model (d_model 64, 4 heads of d_head 16, d_mlp 256, 2 layers, d_vocab 97). A wrong answer
// is explained ("is your scale 1/√d_head?"); an exercise that calls one that does not pass yet waits for it.
// Stuck? `sharplens learn solution 1 --dir solutions` writes the worked solutions.
//
// Shapes follow TransformerLens: x / resid [batch, pos, d_model]; W_Q, W_K, W_V [n_heads, d_model, d_head];
// W_O [n_heads, d_head, d_model]; patterns [batch, head, query_pos, key_pos]. torch.einsum is your friend.
//
// Multiply with x.MatMul(y) (SharpLens's checked matmul), not TorchSharp's x.matmul(y): on a shape mismatch
// TorchSharp's matmul ends the whole program, while MatMul throws an exception that names both shapes, and the
// check tells you which exercise and line.

using SharpLens;
using SharpLens.Learn;
using TorchSharp;
using static TorchSharp.torch;

return Chapter1.Check(args, new Chapter1.Exercises
{
    Embed = Exercises.Embed,
    PosEmbed = Exercises.PosEmbed,
    LayerNorm = Exercises.LayerNorm,
    ApplyCausalMask = Exercises.ApplyCausalMask,
    AttentionPattern = Exercises.AttentionPattern,
    Attention = Exercises.Attention,
    Mlp = Exercises.Mlp,
    Block = Exercises.Block,
    Unembed = Exercises.Unembed,
    Model = Exercises.Model,
    TopK = Exercises.TopK,
    TopP = Exercises.TopP,
    GenerateGreedy = Exercises.GenerateGreedy,
    AttentionWithCache = Exercises.AttentionWithCache,
});

static class Exercises
{
    // ── 1. Embed ─────────────────────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] (token ids) → [batch, pos, d_model]: row tokens[b, p] of W_E [d_vocab, d_model].
    // Hint: a tensor indexed with a tensor of ids picks those rows: W_E[tokens].
    public static Tensor Embed(Tensor tokens, Tensor W_E)
    {
        //> solution
        return W_E[tokens]; // [batch, pos, d_model]
        //< solution
    }

    // ── 2. PosEmbed ──────────────────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] → [batch, pos, d_model]: row p of W_pos [n_ctx, d_model] at position p, the same for every
    // sequence of the batch. Only the number of positions matters, not the ids.
    // Hint: W_pos[..pos] is [pos, d_model]; .expand(batch, pos, d_model) repeats it without copying.
    public static Tensor PosEmbed(Tensor tokens, Tensor W_pos)
    {
        //> solution
        long batch = tokens.shape[0], pos = tokens.shape[1];
        return W_pos[..(int)pos].expand(batch, pos, W_pos.shape[1]); // [batch, pos, d_model]
        //< solution
    }

    // ── 3. LayerNorm ─────────────────────────────────────────────────────────────────────────────────────────────
    // x [batch, pos, d_model]: subtract each vector's mean, divide by its standard deviation sqrt(variance + eps),
    // then scale by w and shift by b (both [d_model]). Do not change x in place.
    // Hint: x.mean([-1], keepdim: true) keeps the last dimension as 1, so it broadcasts against x.
    public static Tensor LayerNorm(Tensor x, Tensor w, Tensor b, double eps)
    {
        //> solution
        var centred = x - x.mean([-1], keepdim: true);                         // [batch, pos, d_model]
        var scale = (centred.pow(2).mean([-1], keepdim: true) + eps).sqrt();   // [batch, pos, 1]
        return centred / scale * w + b;
        //< solution
    }

    // ── 4. ApplyCausalMask ───────────────────────────────────────────────────────────────────────────────────────
    // scores [batch, head, query_pos, key_pos] → the same scores with every key after its query set to −∞, so that
    // after the softmax no position sees the future. Return a new tensor.
    // Hint: torch.ones(q, k, dtype: ScalarType.Bool).triu(1) is true above the diagonal; scores.masked_fill(mask, v).
    public static Tensor ApplyCausalMask(Tensor scores)
    {
        //> solution
        long q = scores.shape[^2], k = scores.shape[^1];
        var future = torch.ones(q, k, dtype: ScalarType.Bool).triu(1); // [query_pos, key_pos]: true where the key comes later
        return scores.masked_fill(future, double.NegativeInfinity);
        //< solution
    }

    // ── 5. AttentionPattern ──────────────────────────────────────────────────────────────────────────────────────
    // x [batch, pos, d_model] → pattern [batch, head, query_pos, key_pos]:
    //   q = x·W_Q + b_Q, k = x·W_K + b_K    (each [batch, pos, head, d_head])
    //   scores = q·k / √d_head, masked causally (your ApplyCausalMask), softmax over the keys.
    // Hint: einsum("bpm,hmd->bphd", x, w.W_Q) and einsum("bqhd,bkhd->bhqk", q, k). w.d_head is d_head.
    public static Tensor AttentionPattern(Tensor x, AttentionWeights w)
    {
        //> solution
        var q = einsum("bpm,hmd->bphd", x, w.W_Q) + w.b_Q;                    // [batch, pos, head, d_head]
        var k = einsum("bpm,hmd->bphd", x, w.W_K) + w.b_K;                    // [batch, pos, head, d_head]
        var scores = einsum("bqhd,bkhd->bhqk", q, k) / Math.Sqrt(w.d_head);   // [batch, head, query_pos, key_pos]
        return ApplyCausalMask(scores).softmax(-1);
        //< solution
    }

    // ── 6. Attention ─────────────────────────────────────────────────────────────────────────────────────────────
    // x [batch, pos, d_model] → [batch, pos, d_model]: v = x·W_V + b_V; each head mixes the values with its pattern
    // (z [batch, pos, head, d_head]); W_O maps every head back to d_model and the heads are summed; b_O is added once.
    public static Tensor Attention(Tensor x, AttentionWeights w)
    {
        //> solution
        var pattern = AttentionPattern(x, w);                                  // [batch, head, query_pos, key_pos]
        var v = einsum("bpm,hmd->bphd", x, w.W_V) + w.b_V;                    // [batch, pos, head, d_head]
        var z = einsum("bhqk,bkhd->bqhd", pattern, v);                        // [batch, query_pos, head, d_head]
        return einsum("bqhd,hdm->bqm", z, w.W_O) + w.b_O;                     // [batch, pos, d_model]
        //< solution
    }

    // ── 7. Mlp ───────────────────────────────────────────────────────────────────────────────────────────────────
    // x [batch, pos, d_model] → [batch, pos, d_model]: GELU(x·W_in + b_in)·W_out + b_out, with GPT-2's GELU, the tanh
    // approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    public static Tensor Mlp(Tensor x, MlpWeights w)
    {
        //> solution
        var pre = x.MatMul(w.W_in) + w.b_in;                                                   // [batch, pos, d_mlp]
        var post = 0.5 * pre * (1 + (Math.Sqrt(2 / Math.PI) * (pre + 0.044715 * pre.pow(3))).tanh());
        return post.MatMul(w.W_out) + w.b_out;                                                 // [batch, pos, d_model]
        //< solution
    }

    // ── 8. Block ─────────────────────────────────────────────────────────────────────────────────────────────────
    // resid_pre [batch, pos, d_model] → resid_post: attention reads LayerNorm(ln1) of the stream and adds its output
    // (resid_mid); the MLP reads LayerNorm(ln2) of resid_mid and adds its output. Use your LayerNorm, Attention, Mlp.
    public static Tensor Block(Tensor resid, BlockWeights w)
    {
        //> solution
        var mid = resid + Attention(LayerNorm(resid, w.ln1.w, w.ln1.b, w.ln1.eps), w.attn);    // [batch, pos, d_model]
        return mid + Mlp(LayerNorm(mid, w.ln2.w, w.ln2.b, w.ln2.eps), w.mlp);
        //< solution
    }

    // ── 9. Unembed ───────────────────────────────────────────────────────────────────────────────────────────────
    // x [batch, pos, d_model] → logits [batch, pos, d_vocab]: x·W_U + b_U.
    public static Tensor Unembed(Tensor x, Tensor W_U, Tensor b_U)
    {
        //> solution
        return x.MatMul(W_U) + b_U;
        //< solution
    }

    // ── 10. Model ────────────────────────────────────────────────────────────────────────────────────────────────
    // tokens [batch, pos] → logits [batch, pos, d_vocab]: embed + pos_embed, every block in turn, ln_final, unembed.
    // The check loads a SharpLens model's weights into w and wants its logits, within 1e-4.
    public static Tensor Model(Tensor tokens, GptWeights w)
    {
        //> solution
        var resid = Embed(tokens, w.W_E) + PosEmbed(tokens, w.W_pos);          // [batch, pos, d_model]
        foreach (var block in w.blocks) resid = Block(resid, block);
        return Unembed(LayerNorm(resid, w.ln_final.w, w.ln_final.b, w.ln_final.eps), w.W_U, w.b_U);
        //< solution
    }

    // ── 11. TopK ─────────────────────────────────────────────────────────────────────────────────────────────────
    // logits [batch, d_vocab] → the same logits with all but the k largest of each row set to −∞ (ties with the k-th
    // largest stay). Sampling from softmax of the result then only ever picks one of the top k.
    // Hint: logits.topk(k).values[.., ^1..] is each row's k-th largest logit, [batch, 1].
    public static Tensor TopK(Tensor logits, int k)
    {
        //> solution
        var kth = logits.topk(k).values[.., ^1..];                              // [batch, 1]
        return logits.masked_fill(logits < kth, double.NegativeInfinity);
        //< solution
    }

    // ── 12. TopP ─────────────────────────────────────────────────────────────────────────────────────────────────
    // logits [batch, d_vocab] → keep the most likely tokens, in order, until their total probability reaches p; the
    // token that crosses p stays (so the top token always does); the rest become −∞. Return them in vocabulary order.
    // Hint: var (sorted, order) = logits.sort(-1, descending: true); softmax and cumsum over the sorted logits; a
    // boolean mask in sorted order goes back to vocabulary order with zeros_like(mask).scatter(-1, order, mask).
    public static Tensor TopP(Tensor logits, double p)
    {
        //> solution
        var (sorted, order) = logits.sort(-1, descending: true);               // [batch, d_vocab]
        var probs = sorted.softmax(-1);
        var drop = (probs.cumsum(-1) - probs) >= p;                            // the tokens before it already reach p
        return logits.masked_fill(zeros_like(drop).scatter(-1, order, drop), double.NegativeInfinity);
        //< solution
    }

    // ── 13. GenerateGreedy ───────────────────────────────────────────────────────────────────────────────────────
    // model: tokens [1, pos] → logits [1, pos, d_vocab]. prompt [1, pos] → [1, pos + n]: n times, append the most
    // likely next token (the argmax of the logits at the last position).
    // Hint: logits[.., -1] is [1, d_vocab]; .argmax(-1, keepdim: true) is [1, 1]; torch.cat([a, b], 1) appends.
    public static Tensor GenerateGreedy(Func<Tensor, Tensor> model, Tensor prompt, int n)
    {
        //> solution
        var tokens = prompt;                                                   // [1, pos]
        for (int i = 0; i < n; i++)
        {
            var next = model(tokens)[.., -1].argmax(-1, keepdim: true);        // [1, 1]
            tokens = torch.cat([tokens, next], 1);
        }
        return tokens;
        //< solution
    }

    // ── 14. AttentionWithCache ───────────────────────────────────────────────────────────────────────────────────
    // Generation recomputes every position at every step. A key/value cache keeps the keys and values of the
    // positions already seen, so a step computes only the new ones. x [batch, new, d_model] holds only the new
    // positions; cache.K and cache.V hold the earlier positions' keys and values [batch, past, head, d_head] (null at
    // first). Append the new keys and values to the cache and return attention's output for the new positions,
    // [batch, new, d_model] — the same numbers Attention gives on the whole sequence.
    // Hint: new query i sits at position past + i, so it may see keys 0 … past + i.
    public static Tensor AttentionWithCache(Tensor x, AttentionWeights w, LayerCache cache)
    {
        //> solution
        var q = einsum("bpm,hmd->bphd", x, w.W_Q) + w.b_Q;                    // [batch, new, head, d_head]
        var kNew = einsum("bpm,hmd->bphd", x, w.W_K) + w.b_K;
        var vNew = einsum("bpm,hmd->bphd", x, w.W_V) + w.b_V;
        cache.K = cache.K is null ? kNew : torch.cat([cache.K, kNew], 1);    // [batch, past + new, head, d_head]
        cache.V = cache.V is null ? vNew : torch.cat([cache.V, vNew], 1);
        long past = cache.K.shape[1] - x.shape[1];
        var scores = einsum("bqhd,bkhd->bhqk", q, cache.K) / Math.Sqrt(w.d_head); // [batch, head, new, past + new]
        var future = torch.ones(x.shape[1], cache.K.shape[1], dtype: ScalarType.Bool).triu(past + 1);
        var pattern = scores.masked_fill(future, double.NegativeInfinity).softmax(-1);
        var z = einsum("bhqk,bkhd->bqhd", pattern, cache.V);                  // [batch, new, head, d_head]
        return einsum("bqhd,hdm->bqm", z, w.W_O) + w.b_O;
        //< solution
    }
}
