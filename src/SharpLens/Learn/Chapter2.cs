using System.Runtime.CompilerServices;
using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>
/// Chapter 2, hooks, caches and induction: on the induction organism (a 2-layer attention-only model trained on
/// sequences that repeat), the learner recomputes attention from the cache, writes head detectors, direct logit
/// attribution and head ablations; each number must equal the library's (ARENA 1.2's pattern).
/// </summary>
public static class Chapter2
{
    public const int Number = 2;

    /// <summary>The model the checks read; null: the induction organism (<see cref="Organism.Induction"/>, trained on first use).</summary>
    public static Func<HookedTransformer>? ModelOverride { get; set; }

    public sealed class Exercises
    {
        public required Func<Tensor, Tensor, Tensor> PatternFromQK { get; init; }                         // (q, k) [batch, pos, head, d_head] → [batch, head, q, k]
        public required Func<HookedTransformer, Tensor, Tensor> PreviousTokenScores { get; init; }        // → [n_layers, n_heads]
        public required Func<HookedTransformer, Tensor, Tensor> InductionScores { get; init; }            // → [n_layers, n_heads]
        public required Func<HookedTransformer, ActivationCache, Tensor, Tensor> LogitAttribution { get; init; } // → [batch, pos − 1, 2 + n_layers·n_heads]
        public required Func<HookedTransformer, Tensor, Tensor> AblationScores { get; init; }             // → [n_layers, n_heads]
    }

    public static readonly string[] ExerciseNames = ["PatternFromQK", "PreviousTokenScores", "InductionScores", "LogitAttribution", "AblationScores"];

    public static int Check(string[] args, Exercises learner, [CallerFilePath] string? file = null) =>
        Checker.Run(Number, args, ExerciseNames, () => Build(learner), file);

    static HookedTransformer LoadModel()
    {
        if (ModelOverride is { } f) return f();
        if (!Organism.IsCached("induction")) (Checker.Output ?? Console.Out).WriteLine("Training the induction organism once (about a minute; cached afterwards) ...");
        return Organism.Induction().Model;
    }

    static IReadOnlyList<Exercise> Build(Exercises learner)
    {
        var model = LoadModel();
        var cfg = model.Config;
        int layers = cfg.NLayers, heads = cfg.NHeads;
        int half = Math.Min(20, (cfg.NCtx - 1) / 2);
        var tokens = HeadDetectors.RepeatedRandomTokens(cfg, half, 4, new Generator(5)); // [4, 1 + 2·half]: BOS, r, r
        var (logits, cache) = model.RunWithCache(tokens);
        using var noGrad = no_grad();
        var detectors = HeadDetectors.ScoreHeads(model, tokens);
        Tensor Scores(double[,] s) => tensor(s); // [n_layers, n_heads], float64
        Tensor AsScores(Tensor? t) => t is null ? null! : t.to(ScalarType.Float64);

        Tensor Attribution(Tensor answers) // answers [batch, pos − 1]: the token each position's logit is read for
        {
            var directions = model.unembed.W_U.T[answers];                                   // [batch, pos − 1, d_model]
            var parts = new List<Tensor> { (cache["hook_embed"] + cache["hook_pos_embed"])[.., ..^1] };
            var bias = model.unembed.b_U[answers].unsqueeze(-1);                             // [batch, pos − 1, 1]
            for (int l = 0; l < layers; l++)
            {
                var attn = model.blocks[l].attn;
                var perHead = einsum("bphd,hdm->bphm", cache["z", l], attn.W_O)[.., ..^1];   // [batch, pos − 1, head, d_model]
                for (int h = 0; h < heads; h++) parts.Add(perHead[.., .., h]);
                bias = bias + einsum("m,bpm->bp", attn.b_O, directions).unsqueeze(-1);
            }
            var components = stack(parts, 2);                                                // [batch, pos − 1, 1 + L·H, d_model]
            var direct = einsum("bpcm,bpm->bpc", components, directions);
            return cat([direct, bias], 2);                                                   // [batch, pos − 1, 2 + L·H]
        }

        Tensor Ablation(bool subtractClean)
        {
            double clean = HookedTransformer.Loss(logits, tokens).item<float>();
            var scores = zeros(layers, heads, dtype: ScalarType.Float64);
            for (int l = 0; l < layers; l++)
                for (int h = 0; h < heads; h++)
                {
                    int head = h;
                    var ablated = model.RunWithHooks(tokens, [(ActivationCache.ActName("z", l), (z, _) => { var c = z.clone(); c[.., .., head] = 0; return c; })]);
                    scores[l, h] = HookedTransformer.Loss(ablated, tokens).item<float>() - (subtractClean ? clean : 0);
                }
            return scores;
        }

        return
        [
            new("PatternFromQK", "attention patterns from the cache's queries and keys", [], () =>
            {
                for (int l = 0; l < layers; l++)
                {
                    var q = cache["q", l];
                    var k = cache["k", l];
                    var actual = learner.PatternFromQK(q, k);
                    double scale = cfg.AttnScale ?? Math.Sqrt(cfg.DHead);
                    var raw = einsum("bqhd,bkhd->bhqk", q, k);
                    var future = ones(q.shape[1], q.shape[1], dtype: ScalarType.Bool).triu(1);
                    Expect.Close($"PatternFromQK(cache[\"q\", {l}], cache[\"k\", {l}])", actual, cache["pattern", l],
                        beforeGeneric: () => Expect.RowsSumToOne("PatternFromQK", actual, "Softmax over the keys (the last dimension), after masking."),
                        bugs:
                        [
                            new Bug("Divide the scores by √d_head before the softmax (you did not scale them).", () => raw.masked_fill(future, double.NegativeInfinity).softmax(-1)),
                            new Bug("Is your scale 1/√d_head? You divided by d_head.", () => (raw / cfg.DHead).masked_fill(future, double.NegativeInfinity).softmax(-1)),
                            new Bug("Apply the causal mask: no query attends to a later key.", () => (raw / scale).softmax(-1)),
                        ]);
                }
            }),
            new("PreviousTokenScores", "a previous-token detector: mean attention from each query to the key just before it", [], () =>
            {
                var actual = AsScores(learner.PreviousTokenScores(model, tokens.clone()));
                Expect.Close("PreviousTokenScores", actual, Scores(detectors.PreviousToken), atol: 1e-5, rtol: 1e-4, bugs:
                    new Bug("That is attention to the current token: a previous-token head attends to key q − 1 (the diagonal below the main one, offset −1).",
                        () => stack(Enumerable.Range(0, layers).Select(l => cache["pattern", l].diagonal(0, 2, 3).mean([0, 2]).to(ScalarType.Float64)).ToList())));
                Checker.Plot("Your previous-token scores per head", LearnPlots.Heatmap(actual, l => $"layer {l}", h => $"head {h}", "layer", "head", 0, 1, annotate: true, cell: 40));
            }),
            new("InductionScores", "an induction detector with hooks: attention to the token after an earlier copy of the current one", [], () =>
            {
                var actual = AsScores(learner.InductionScores(model, tokens.clone()));
                Expect.Close("InductionScores", actual, Scores(detectors.Induction), atol: 1e-5, rtol: 1e-4, bugs:
                    new Bug("That is the duplicate-token score (attention to the earlier copy itself): an induction head attends to the token after it, the key k with tokens[k − 1] = tokens[q].",
                        () => Scores(detectors.DuplicateToken)));
                Checker.Plot("Your induction scores per head: the induction heads stand out", LearnPlots.Heatmap(actual, l => $"layer {l}", h => $"head {h}", "layer", "head", 0, 1, annotate: true, cell: 40));
            }),
            new("LogitAttribution", "direct logit attribution: what each head writes along the correct next token's unembedding", [], () =>
            {
                var expected = Attribution(tokens[.., 1..]);
                var actual = learner.LogitAttribution(model, cache, tokens.clone());
                var answers = tokens[.., 1..];
                var correct = logits[.., ..^1].gather(-1, answers.unsqueeze(-1)).squeeze(-1); // [batch, pos − 1]
                if (!expected.sum(-1).allclose(correct, rtol: 1e-4, atol: 1e-3))
                    throw new SharpLensInternalException("Chapter 2's attribution does not sum to the model's logits (the organism should have no LayerNorm).");
                Expect.Close("LogitAttribution", actual, expected, atol: 1e-3, bugs:
                    new Bug("The correct token at position p is the next one, tokens[p + 1]: use tokens[.., 1..] as the answers (and positions 0 … pos − 2).",
                        () => Attribution(tokens[.., ..^1])));
                Expect.Close("the sum of your attribution's components (it should be the correct token's logit)", actual.sum(-1), correct, atol: 1e-3);
            }),
            new("AblationScores", "zero-ablation: how much the loss rises when one head's output is removed", [], () =>
            {
                var actual = AsScores(learner.AblationScores(model, tokens.clone()));
                var expected = Ablation(subtractClean: true);
                Expect.Close("AblationScores", actual, expected, atol: 1e-4, rtol: 1e-3, bugs:
                    new Bug("Subtract the clean loss: the score is the ablated loss minus the loss with no head removed.", () => Ablation(subtractClean: false)));
                Checker.Plot("Your ablation scores: how much the loss rises without each head", LearnPlots.Heatmap(actual, l => $"layer {l}", h => $"head {h}", "layer", "head", annotate: true, cell: 40));
            }),
        ];
    }
}
