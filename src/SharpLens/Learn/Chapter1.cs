using System.Runtime.CompilerServices;
using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>A LayerNorm's learned scale and shift, and its ε.</summary>
public sealed record LayerNormWeights(Tensor w, Tensor b, double eps);

/// <summary>One attention layer's weights, with TransformerLens's names and shapes.</summary>
public sealed record AttentionWeights(
    Tensor W_Q, Tensor b_Q, // [n_heads, d_model, d_head], [n_heads, d_head]
    Tensor W_K, Tensor b_K,
    Tensor W_V, Tensor b_V,
    Tensor W_O, Tensor b_O) // [n_heads, d_head, d_model], [d_model]
{
    public long n_heads => W_Q.shape[0];
    public long d_head => W_Q.shape[2];
}

/// <summary>One MLP's weights: W_in [d_model, d_mlp], b_in [d_mlp], W_out [d_mlp, d_model], b_out [d_model].</summary>
public sealed record MlpWeights(Tensor W_in, Tensor b_in, Tensor W_out, Tensor b_out);

/// <summary>One transformer block: ln1 → attention → (add) → ln2 → MLP → (add).</summary>
public sealed record BlockWeights(LayerNormWeights ln1, AttentionWeights attn, LayerNormWeights ln2, MlpWeights mlp);

/// <summary>A whole GPT-2-style model's weights, read from a SharpLens <see cref="HookedTransformer"/>.</summary>
public sealed record GptWeights(Tensor W_E, Tensor W_pos, IReadOnlyList<BlockWeights> blocks, LayerNormWeights ln_final, Tensor W_U, Tensor b_U)
{
    /// <summary>The weights of <paramref name="model"/> (a GPT-2-style model: LayerNorm, learned positions, an MLP per block).</summary>
    public static GptWeights From(HookedTransformer model)
    {
        var cfg = model.Config;
        if (cfg.NormalizationType != Normalization.LN || cfg.PositionalEmbeddingType != PositionalEmbedding.Learned || cfg.AttnOnly || cfg.GatedMlp)
            throw new SharpLensArgumentException(nameof(model), $"{cfg.ModelName} is not GPT-2-style (LayerNorm, learned positions, an ungated MLP in every block).");
        LayerNormWeights Ln(Models.Components.Norm n) => new(n.w!, n.b!, cfg.Eps);
        var blocks = model.blocks.Select(b => new BlockWeights(
            Ln(b.ln1),
            new AttentionWeights(b.attn.W_Q, b.attn.b_Q, b.attn.W_K, b.attn.b_K, b.attn.W_V, b.attn.b_V, b.attn.W_O, b.attn.b_O),
            Ln(b.ln2!),
            new MlpWeights(b.mlp!.W_in, b.mlp.b_in, b.mlp.W_out, b.mlp.b_out))).ToList();
        return new(model.embed.W_E, model.pos_embed!.W_pos, blocks, Ln(model.ln_final), model.unembed.W_U, model.unembed.b_U);
    }
}

/// <summary>One layer's key/value cache for <c>AttentionWithCache</c>: keys and values [batch, pos, head, d_head] so far (null when empty).</summary>
public sealed class LayerCache
{
    public Tensor? K { get; set; }
    public Tensor? V { get; set; }
}

/// <summary>
/// Chapter 1, a transformer from scratch: the exercises, and the checks that run the learner's code against
/// SharpLens's own components on random inputs and on a SharpLens GPT-2-style model (ARENA 1.1's pattern: a reference
/// model's cache gives every component's input and expected output).
/// </summary>
public static class Chapter1
{
    public const int Number = 1;

    /// <summary>The learner's methods, one per exercise (the chapter file fills these in from its <c>Exercises</c> class).</summary>
    public sealed class Exercises
    {
        public required Func<Tensor, Tensor, Tensor> Embed { get; init; }               // (tokens [batch, pos], W_E) → [batch, pos, d_model]
        public required Func<Tensor, Tensor, Tensor> PosEmbed { get; init; }            // (tokens, W_pos) → [batch, pos, d_model]
        public required Func<Tensor, Tensor, Tensor, double, Tensor> LayerNorm { get; init; } // (x, w, b, eps)
        public required Func<Tensor, Tensor> ApplyCausalMask { get; init; }             // scores [batch, head, q, k] → masked scores
        public required Func<Tensor, AttentionWeights, Tensor> AttentionPattern { get; init; } // x → [batch, head, q, k]
        public required Func<Tensor, AttentionWeights, Tensor> Attention { get; init; } // x → [batch, pos, d_model]
        public required Func<Tensor, MlpWeights, Tensor> Mlp { get; init; }
        public required Func<Tensor, BlockWeights, Tensor> Block { get; init; }
        public required Func<Tensor, Tensor, Tensor, Tensor> Unembed { get; init; }     // (x, W_U, b_U) → logits
        public required Func<Tensor, GptWeights, Tensor> Model { get; init; }           // tokens → logits [batch, pos, d_vocab]
        public required Func<Tensor, int, Tensor> TopK { get; init; }                   // logits [batch, d_vocab] → filtered
        public required Func<Tensor, double, Tensor> TopP { get; init; }
        public required Func<Func<Tensor, Tensor>, Tensor, int, Tensor> GenerateGreedy { get; init; } // (model, prompt [1, pos], n) → [1, pos + n]
        public required Func<Tensor, AttentionWeights, LayerCache, Tensor> AttentionWithCache { get; init; } // new positions only
    }

    /// <summary>The exercise names, in the order of the chapter.</summary>
    public static readonly string[] ExerciseNames =
        ["Embed", "PosEmbed", "LayerNorm", "ApplyCausalMask", "AttentionPattern", "Attention", "Mlp", "Block", "Unembed", "Model",
         "TopK", "TopP", "GenerateGreedy", "AttentionWithCache"];

    /// <summary>Checks the learner's exercises (all, or those named in <paramref name="args"/>); the exit code is 0 when all pass.</summary>
    public static int Check(string[] args, Exercises learner, [CallerFilePath] string? file = null) =>
        Checker.Run(Number, args, ExerciseNames, () => Build(learner), file);

    /// <summary>The reference model every check reads: GPT-2-style, small, with random weights whose every LayerNorm and bias matters.</summary>
    public static HookedTransformer ReferenceModel()
    {
        var cfg = new ModelConfig
        {
            DModel = 64, NLayers = 2, NHeads = 4, DHead = 16, DMlp = 256, DVocab = 97, NCtx = 24,
            ActFn = Activation.GeluNew, ModelName = "learn-gpt2",
        };
        var model = new HookedTransformer(cfg, seed: 1);
        using var _ = no_grad();
        var g = new Generator(2);
        foreach (var (name, p) in model.named_parameters())
        {
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            if (leaf == "w") p.copy_(1 + 0.2 * randn(p.shape, generator: g));
            else if (leaf == "b" || leaf.StartsWith("b_", StringComparison.Ordinal)) p.copy_(0.1 * randn(p.shape, generator: g));
        }
        return model;
    }

    static IReadOnlyList<Exercise> Build(Exercises learner)
    {
        var model = ReferenceModel();
        var weights = GptWeights.From(model);
        var g = new Generator(3);
        var tokens = randint(0, model.Config.DVocab, [2, 12], generator: g); // [batch 2, pos 12]
        var (logits, cache) = model.RunWithCache(tokens);
        var block0 = weights.blocks[0];
        double eps = model.Config.Eps;
        Tensor Ln(Tensor x, LayerNormWeights w, bool unbiased = false, bool epsOutside = false)
        {
            var centred = x - x.mean([-1], keepdim: true);
            var variance = unbiased ? x.var(-1, unbiased: true, keepdim: true) : centred.pow(2).mean([-1], keepdim: true);
            var scale = epsOutside ? variance.sqrt() + w.eps : (variance + w.eps).sqrt();
            return centred / scale * w.w + w.b;
        }
        Tensor MlpOut(Tensor x, MlpWeights w, Func<Tensor, Tensor> act) => act(x.MatMul(w.W_in) + w.b_in).MatMul(w.W_out) + w.b_out;
        Tensor GeluNew(Tensor x) => 0.5 * x * (1 + (Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x.pow(3))).tanh());
        Tensor Causal(long q, long k, long past) => ones(q, k, dtype: ScalarType.Bool).triu(past + 1); // true: a key after the query
        Tensor Pattern(Tensor x, AttentionWeights w, double scale, bool mask = true, long dim = -1)
        {
            var q = einsum("bpm,hmd->bphd", x, w.W_Q) + w.b_Q;
            var k = einsum("bpm,hmd->bphd", x, w.W_K) + w.b_K;
            var scores = einsum("bqhd,bkhd->bhqk", q, k) / scale;
            if (mask) scores = scores.masked_fill(Causal(x.shape[1], x.shape[1], 0), double.NegativeInfinity);
            return scores.softmax(dim);
        }

        return
        [
            new("Embed", "token embedding: W_E's row for each token", [], () =>
            {
                var actual = learner.Embed(tokens.clone(), weights.W_E);
                Expect.Close("Embed(tokens, W_E)", actual, cache["hook_embed"],
                    factorHint: "GPT-2 does not scale its embeddings (√d_model is the original Transformer's).");
            }),
            new("PosEmbed", "positional embedding: W_pos's row for each position", [], () =>
            {
                var actual = learner.PosEmbed(tokens.clone(), weights.W_pos);
                var expected = cache["hook_pos_embed"];
                Expect.Close("PosEmbed(tokens, W_pos)", actual, expected, bugs:
                    new Bug("PosEmbed must have a batch dimension: [batch, pos, d_model]. Take W_pos's first pos rows and expand them over the batch.",
                        () => expected[0]));
            }),
            new("LayerNorm", "LayerNorm: centre, divide by the standard deviation, scale and shift", [], () =>
            {
                var x = 3 * randn([2, 5, 64], generator: g) + 1;
                var w = new LayerNormWeights(1 + 0.3 * randn([64], generator: g), 0.3 * randn([64], generator: g), 0.1); // a large ε shows where it goes
                var xBefore = x.clone();
                var actual = learner.LayerNorm(x, w.w, w.b, w.eps);
                Expect.Unchanged("x", xBefore, x);
                var ln = new Models.Components.LayerNorm(model.Config with { Eps = w.eps }, Normalization.LN, "ln", new HookPointSet());
                using (no_grad()) { ln.w!.copy_(w.w); ln.b!.copy_(w.b); }
                var expected = ln.Forward(x).detach();
                Expect.Close("LayerNorm(x, w, b, eps = 0.1)", actual, expected, bugs:
                [
                    new Bug("Is your epsilon inside the square root? The scale is sqrt(variance + eps), not sqrt(variance) + eps.", () => Ln(x, w, epsOutside: true)),
                    new Bug("LayerNorm uses the biased variance (the mean of the squared deviations, dividing by d_model): TorchSharp's x.var() divides by d_model − 1 unless you pass unbiased: false.", () => Ln(x, w, unbiased: true)),
                    new Bug("Subtract the mean before dividing: LayerNorm centres x first.", () => x / (x.pow(2).mean([-1], keepdim: true) + w.eps).sqrt() * w.w + w.b),
                ]);
                var real = learner.LayerNorm(cache["blocks.0.hook_resid_pre"], block0.ln1.w, block0.ln1.b, eps);
                Expect.Close("LayerNorm on blocks.0.hook_resid_pre (with ln1's weights)", real, cache["blocks.0.ln1.hook_normalized"]);
            }),
            new("ApplyCausalMask", "the causal mask: no query sees a later key", [], () =>
            {
                var scores = randn([1, 2, 5, 5], generator: g);
                var before = scores.clone();
                var actual = learner.ApplyCausalMask(scores);
                Expect.Unchanged("scores", before, scores);
                if (actual is null) throw new CheckFailure("ApplyCausalMask returned null: return the masked scores.");
                if (!actual.shape.SequenceEqual(scores.shape)) throw new CheckFailure($"ApplyCausalMask(scores) has shape {Expect.Shape(actual)} but should keep the scores' shape {Expect.Shape(scores)}.");
                if (actual.isnan().any().item<bool>())
                    throw new CheckFailure("The masked scores contain NaN: multiplying by a 0/−∞ mask gives 0 × −∞ = NaN. Use masked_fill(mask, float.NegativeInfinity) instead.");
                var expected = new Models.Components.AttentionMask(5, null, scores.device).Apply(scores);
                var pattern = actual.softmax(-1);
                if (pattern.isnan().any().item<bool>())
                    throw new CheckFailure((actual.diagonal(0, -2, -1) == double.NegativeInfinity).any().item<bool>()
                        ? "A position may attend to itself: mask only the keys after the query (triu with diagonal 1), not the diagonal too. Query 0 is left with no key at all: its whole row is −∞, so its softmax is NaN."
                        : "After the softmax some rows are NaN: a whole row was set to −∞. Every query must see at least itself (mask only the keys after it).");
                Expect.Close("softmax(ApplyCausalMask(scores))", pattern, expected.softmax(-1), bugs:
                [
                    new Bug("A position may attend to itself: mask only the keys after the query (triu with diagonal 1), not the diagonal too.",
                        () => scores.masked_fill(Causal(5, 5, -1), double.NegativeInfinity).softmax(-1)),
                    new Bug("You masked the past instead of the future: a query sees itself and the keys before it (mask the upper triangle above the diagonal).",
                        () => scores.masked_fill(ones(5, 5, dtype: ScalarType.Bool).tril(-1), double.NegativeInfinity).softmax(-1)),
                    new Bug("The scores were not masked: the upper triangle (keys after the query) must become −∞.", () => scores.softmax(-1)),
                ]);
                var lower = Causal(5, 5, 0).logical_not();
                if (!actual.masked_select(lower).allclose(scores.masked_select(lower)))
                    throw new CheckFailure("The scores a query may see (on and below the diagonal) must stay as they are: the mask only replaces the ones above the diagonal.");
            }),
            new("AttentionPattern", "attention patterns: softmax(q·k / √d_head) under the causal mask", ["ApplyCausalMask"], () =>
            {
                var x = cache["blocks.0.ln1.hook_normalized"];
                var w = block0.attn;
                var actual = learner.AttentionPattern(x, w);
                Expect.Close("AttentionPattern(ln1 output, W_Q, W_K)", actual, cache["blocks.0.attn.hook_pattern"],
                    beforeGeneric: () => Expect.RowsSumToOne("AttentionPattern", actual, "Softmax over the keys (the last dimension), after masking."),
                    bugs:
                    [
                        new Bug("Is your scale 1/√d_head? You divided the scores by d_head.", () => Pattern(x, w, w.d_head)),
                        new Bug("The scores need dividing by √d_head before the softmax (you did not scale them).", () => Pattern(x, w, 1)),
                        new Bug("Scale by √d_head (the size of one head's query), not √d_model.", () => Pattern(x, w, Math.Sqrt(x.shape[^1]))),
                        new Bug("Mask before the softmax: masking after it leaves rows that do not sum to 1.",
                            () => Pattern(x, w, Math.Sqrt(w.d_head), mask: false).masked_fill(Causal(12, 12, 0), 0)),
                        new Bug("Mask before the softmax, not after it (the masked entries are −∞ and the rest do not sum to 1).",
                            () => Pattern(x, w, Math.Sqrt(w.d_head), mask: false).masked_fill(Causal(12, 12, 0), double.NegativeInfinity)),
                        new Bug("Softmax over the keys (the last dimension, -1), not over the queries.", () => Pattern(x, w, Math.Sqrt(w.d_head), dim: -2)),
                        new Bug("No causal mask: every query attends to later positions too. Call ApplyCausalMask on the scores.", () => Pattern(x, w, Math.Sqrt(w.d_head), mask: false)),
                    ]);
                Checker.Plot("Your attention pattern, layer 0 head 0, first sequence: each query (row) attends only to keys at or before it",
                    LearnPlots.Heatmap(actual[0, 0], i => $"q{i}", j => $"k{j}", "query position", "key position", 0, 1, cell: 22));
            }),
            new("Attention", "attention: the pattern mixes values, W_O writes them back", ["AttentionPattern"], () =>
            {
                var x = cache["blocks.0.ln1.hook_normalized"];
                var w = block0.attn;
                var expected = cache["blocks.0.hook_attn_out"];
                var actual = learner.Attention(x, w);
                Expect.Close("Attention(ln1 output)", actual, expected, bugs:
                [
                    new Bug("You left out b_O: add the output bias once, after summing over the heads.", () => expected - w.b_O),
                    new Bug("b_O is added once, after summing over the heads, not once per head.", () => expected + (w.n_heads - 1) * w.b_O),
                    new Bug("You left out b_V: the values are x·W_V + b_V.", () => expected - einsum("hd,hdm->m", w.b_V, w.W_O)),
                ]);
            }),
            new("Mlp", "the MLP: x·W_in + b_in, GELU (GPT-2's tanh form), ·W_out + b_out", [], () =>
            {
                var x = cache["blocks.0.ln2.hook_normalized"];
                var w = block0.mlp;
                var actual = learner.Mlp(x, w);
                Expect.Close("Mlp(ln2 output)", actual, cache["blocks.0.hook_mlp_out"], bugs:
                [
                    new Bug("GPT-2 uses the tanh approximation of GELU (\"gelu_new\"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), not the exact erf form.", () => MlpOut(x, w, t => nn.functional.gelu(t))),
                    new Bug("GPT-2's MLP uses GELU (the tanh form), not ReLU.", () => MlpOut(x, w, t => t.relu())),
                    new Bug("You left out b_out.", () => MlpOut(x, w, GeluNew) - w.b_out),
                    new Bug("You left out b_in (add it before the GELU).", () => GeluNew(x.MatMul(w.W_in)).MatMul(w.W_out) + w.b_out),
                ]);
            }),
            new("Block", "a block: resid_mid = resid_pre + attn(ln1(resid_pre)); resid_post = resid_mid + mlp(ln2(resid_mid))", ["LayerNorm", "Attention", "Mlp"], () =>
            {
                var resid = cache["blocks.0.hook_resid_pre"];
                var actual = learner.Block(resid, block0);
                Expect.Close("Block(blocks.0.hook_resid_pre)", actual, cache["blocks.0.hook_resid_post"], bugs:
                [
                    new Bug("The MLP reads ln2 of resid_mid (the stream after attention's output was added), not of the block's input.",
                        () => cache["blocks.0.hook_resid_mid"] + MlpOut(Ln(resid, block0.ln2), block0.mlp, GeluNew)),
                    new Bug("Keep the residual stream: resid_mid = resid_pre + attention's output (you dropped resid_pre).",
                        () => cache["blocks.0.hook_attn_out"] + MlpOut(Ln(cache["blocks.0.hook_attn_out"], block0.ln2), block0.mlp, GeluNew)),
                    new Bug("Add the MLP's output to resid_mid: resid_post = resid_mid + mlp(ln2(resid_mid)).", () => cache["blocks.0.hook_mlp_out"]),
                ]);
            }),
            new("Unembed", "the unembedding: x·W_U + b_U", [], () =>
            {
                var x = cache["ln_final.hook_normalized"];
                var actual = learner.Unembed(x, weights.W_U, weights.b_U);
                Expect.Close("Unembed(ln_final output)", actual, logits, bugs:
                    new Bug("You left out b_U.", () => logits - weights.b_U));
            }),
            new("Model", "the whole model: its logits must equal SharpLens's within 1e-4", ["Embed", "PosEmbed", "LayerNorm", "Block", "Unembed"], () =>
            {
                var actual = learner.Model(tokens.clone(), weights);
                Expect.Close($"Model(tokens) on {model.Config.ModelName}'s weights", actual, logits, atol: 1e-4, rtol: 0, bugs:
                [
                    new Bug("Apply ln_final to the last block's output before the unembedding.",
                        () => cache["blocks.1.hook_resid_post"].MatMul(weights.W_U) + weights.b_U),
                    new Bug("Each block reads the previous block's output: feed the residual stream through the blocks in turn.",
                        () => Ln(cache["blocks.0.hook_resid_post"] - cache["blocks.0.hook_resid_pre"] + cache["blocks.0.hook_resid_pre"], weights.ln_final).MatMul(weights.W_U) + weights.b_U),
                ]);
                Checker.Plot("Your model's logits at the last position of the first sequence, over the vocabulary, on SharpLens's: the two lines coincide",
                    LearnPlots.Lines([("yours", LearnPlots.Values(actual[0, -1])), ("SharpLens", LearnPlots.Values(logits[0, -1]))], "token id", "logit"));
            }),
            new("TopK", "top-k filtering: keep the k largest logits, −∞ for the rest", [], () =>
            {
                var l = 2 * randn([3, 50], generator: g);
                var before = l.clone();
                var actual = learner.TopK(l, 5);
                Expect.Unchanged("logits", before, l);
                Expect.Close("TopK(logits, k = 5)", actual, Sampling.TopK(l, 5), bugs:
                [
                    new Bug("You kept k − 1 tokens: the k-th largest logit stays (drop only the logits below it: <, not <=).", () => Sampling.TopK(l, 4)),
                    new Bug("You kept k + 1 tokens.", () => Sampling.TopK(l, 6)),
                    new Bug("Set the dropped logits to −∞ (double.NegativeInfinity), not 0: a logit of 0 still has a probability.", () => l.masked_fill(Sampling.TopK(l, 5).isinf(), 0)),
                ]);
            }),
            new("TopP", "top-p (nucleus) filtering: keep the most likely tokens until their probability reaches p", [], () =>
            {
                var l = 2 * randn([3, 50], generator: g);
                var actual = learner.TopP(l, 0.7);
                var (sorted, order) = l.sort(-1, descending: true);
                var cumulative = sorted.softmax(-1).cumsum(-1);
                Expect.Close("TopP(logits, p = 0.7)", actual, Sampling.TopP(l, 0.7), bugs:
                [
                    new Bug("Keep the token that takes the total past p: drop a token only once the tokens before it already reach p (cumulative − its own probability ≥ p).",
                        () => l.masked_fill(zeros_like(cumulative, dtype: ScalarType.Bool).scatter(-1, order, cumulative >= 0.7), double.NegativeInfinity)),
                    new Bug("Return the logits in vocabulary order: you returned them sorted. Scatter the mask back through the sort's indices.",
                        () => sorted.masked_fill((cumulative - sorted.softmax(-1)) >= 0.7, double.NegativeInfinity)),
                ]);
            }),
            new("GenerateGreedy", "greedy generation: append the argmax of the last position's logits, again and again", [], () =>
            {
                var prompt = randint(0, model.Config.DVocab, [1, 5], generator: g);
                var actual = learner.GenerateGreedy(t => model.Run(t), prompt.clone(), 6);
                var expected = model.Generate(prompt, 6, temperature: 0);
                Tensor FirstPosition()
                {
                    var s = prompt;
                    for (int i = 0; i < 6; i++) s = cat([s, model.Run(s)[.., 0].argmax(-1, keepdim: true)], 1);
                    return s;
                }
                Expect.Close("GenerateGreedy(model, prompt, 6)", actual?.to(ScalarType.Int64), expected, atol: 0, rtol: 0, bugs:
                [
                    new Bug("Return the prompt followed by the new tokens, [1, pos + n].", () => expected[.., 5..]),
                    new Bug("The next token comes from the logits at the last position ([.., -1]), not the first.", FirstPosition),
                ]);
            }),
            new("AttentionWithCache", "attention with a key/value cache: new positions only, the same outputs", [], () =>
            {
                var x = cache["blocks.0.ln1.hook_normalized"]; // [2, 12, d_model]
                var w = block0.attn;
                var expected = cache["blocks.0.hook_attn_out"];
                var layer = new LayerCache();
                var first = learner.AttentionWithCache(x[.., ..7], w, layer);
                Expect.Close("AttentionWithCache on positions 0–6 with an empty cache (it should equal attention)", first, expected[.., ..7]);
                if (layer.K is null || layer.V is null || layer.K.shape.Length != 4 || layer.K.shape[1] != 7 || layer.V.shape[1] != 7)
                    throw new CheckFailure($"After the first call the cache should hold 7 positions of keys and values, [batch, pos, head, d_head]; cache.K is {(layer.K is null ? "null" : Expect.Shape(layer.K))}. Store the new keys and values, appended to what the cache held.");
                Tensor Unshifted(long start, long end) // the bug: the causal mask of a square [new, new] block, not shifted by the cached length
                {
                    var q = einsum("bpm,hmd->bphd", x[.., (int)start..(int)end], w.W_Q) + w.b_Q;
                    var k = einsum("bpm,hmd->bphd", x[.., ..(int)end], w.W_K) + w.b_K;
                    var v = einsum("bpm,hmd->bphd", x[.., ..(int)end], w.W_V) + w.b_V;
                    var scores = einsum("bqhd,bkhd->bhqk", q, k) / Math.Sqrt(w.d_head);
                    var pattern = scores.masked_fill(Causal(end - start, end, 0), double.NegativeInfinity).softmax(-1);
                    var z = einsum("bhqk,bkhd->bqhd", pattern, v);
                    return einsum("bqhd,hdm->bqm", z, w.W_O) + w.b_O;
                }
                var second = learner.AttentionWithCache(x[.., 7..8], w, layer);
                var third = learner.AttentionWithCache(x[.., 8..], w, layer);
                const string shift = "With a cache, new query i sits at position past + i: mask the keys after past + i (triu with diagonal past + 1), not after i.";
                Expect.Close("AttentionWithCache on position 7 after 7 cached positions", second, expected[.., 7..8], bugs: new Bug(shift, () => Unshifted(7, 8)));
                Expect.Close("AttentionWithCache on positions 8–11 after 8 cached positions", third, expected[.., 8..], bugs:
                    new Bug(shift, () => Unshifted(8, 12)));
            }),
        ];
    }
}
