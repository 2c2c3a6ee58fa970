using System.Runtime.CompilerServices;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>
/// Chapter 3, superposition and SAEs: Elhage et al.'s (2022) toy model of superposition (its forward pass, the
/// importance-weighted loss, each feature's dimensionality), then a sparse autoencoder in SAELens's conventions
/// (encode, the loss with decoder-norm-weighted L1) that the learner trains until its decoder recovers the toy data's
/// true feature directions: mean best cosine ≥ 0.9 (ARENA 1.3.1's pattern).
/// </summary>
public static class Chapter3
{
    public const int Number = 3;

    /// <summary>The toy data TrainSae is checked on: 32 sparse features in 16 dimensions, each active 5% of the time.</summary>
    public const int Features = 32, Dims = 16, DSae = 64;
    public const double ActiveProbability = 0.05, RequiredCosine = 0.9;

    public sealed class Exercises
    {
        public required Func<Tensor, Tensor, Tensor, Tensor> ToyForward { get; init; }                  // (x [batch, n], W [d, n], b [n]) → [batch, n]
        public required Func<Tensor, Tensor, Tensor, Tensor> ImportanceLoss { get; init; }              // (x, x̂ [batch, n], importance [n]) → []
        public required Func<Tensor, Tensor> Dimensionality { get; init; }                              // W [d, n] → [n]
        public required Func<Tensor, Tensor, Tensor, Tensor, Tensor> SaeEncode { get; init; }           // (x [batch, d_in], W_enc [d_in, d_sae], b_enc, b_dec) → [batch, d_sae]
        public required Func<Tensor, Tensor, Tensor, Tensor, double, Tensor> SaeLoss { get; init; }     // (x, x̂, f, W_dec [d_sae, d_in], l1) → []
        public required Func<Func<long, Tensor>, int, int, Tensor> TrainSae { get; init; }              // (batch index → x [batch, d_in], d_in, d_sae) → W_dec [d_sae, d_in]
    }

    public static readonly string[] ExerciseNames = ["ToyForward", "ImportanceLoss", "Dimensionality", "SaeEncode", "SaeLoss", "TrainSae"];

    public static int Check(string[] args, Exercises learner, [CallerFilePath] string? file = null) =>
        Checker.Run(Number, args, ExerciseNames, () => Build(learner), file);

    static IReadOnlyList<Exercise> Build(Exercises learner)
    {
        var g = new Generator(3);
        const int n = 10, d = 4, batch = 12;
        var x = rand(batch, n, generator: g) * (rand(batch, n, generator: g) < 0.3).to(ScalarType.Float32); // [batch, n] sparse features
        var W = randn(d, n, generator: g) * 0.7;                                                           // [d, n]
        var b = randn(n, generator: g) * 0.1;                                                              // [n]
        var importance = pow(0.8, arange(n, dtype: ScalarType.Float32));                                  // [n] 1, 0.8, 0.64, …
        var xHat = (x + randn(batch, n, generator: g) * 0.2).relu();                                       // [batch, n]

        // A standard (ReLU) SAE of SharpLens with every parameter random, so a missing bias or b_dec shows.
        const int dIn = 6, dSae = 9;
        var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, dIn, dSae), seed: 4);
        using (no_grad())
        {
            sae.W_enc.copy_(randn(dIn, dSae, generator: g) * 0.5);
            sae.b_enc!.copy_(randn(dSae, generator: g) * 0.3);
            sae.b_dec.copy_(randn(dIn, generator: g) * 0.3);
            sae.W_dec.copy_(randn(dSae, dIn, generator: g) * 0.8); // rows of norm ≠ 1, so the L1 term's decoder norms matter
        }
        var saeX = randn(batch, dIn, generator: g);                                                        // [batch, d_in]

        Tensor Toy(bool relu, bool bias)
        {
            var hidden = x.MatMul(W.t());                                                                  // [batch, d]
            var pre = hidden.MatMul(W) + (bias ? b : zeros_like(b));                                       // [batch, n]
            return relu ? pre.relu() : pre;
        }
        Tensor Dimensionalities(bool unit)
        {
            var norms = W.norm(0);                                                                         // [n] ‖W_i‖
            var direction = unit ? W / norms : W;                                                          // [d, n]
            var overlaps = direction.t().MatMul(W).pow(2).sum(1);                                          // [n] Σ_j (Ŵ_i · W_j)²
            return norms.pow(2) / overlaps;
        }
        Tensor Encode(bool subtractBDec, bool relu)
        {
            var pre = (subtractBDec ? saeX - sae.b_dec : saeX).MatMul(sae.W_enc) + sae.b_enc!;               // [batch, d_sae]
            return (relu ? pre.relu() : pre).detach();
        }
        Tensor Loss(Tensor saeIn, Tensor recon, Tensor f, double l1, bool decoderNorms, bool mseMeanOverD)
        {
            var mse = (recon - saeIn).pow(2);
            var reconstruction = mseMeanOverD ? mse.mean() : mse.sum(-1).mean();                            // ‖x̂ − x‖², mean over the batch
            var weights = decoderNorms ? sae.W_dec.norm(1) : ones(dSae);                                   // [d_sae]
            return (reconstruction + l1 * (f * weights).sum(-1).mean()).detach();
        }

        return
        [
            new("ToyForward", "the toy model's forward pass: x' = ReLU(Wᵀ W x + b)", [], () =>
            {
                var (xc, Wc, bc) = (x.clone(), W.clone(), b.clone());
                var actual = learner.ToyForward(x, W, b);
                Expect.Unchanged("x", xc, x); Expect.Unchanged("W", Wc, W); Expect.Unchanged("b", bc, b);
                Expect.Close("ToyForward(x, W, b)", actual, Toy(relu: true, bias: true), bugs:
                [
                    new Bug("Apply the ReLU at the end: x' = ReLU(Wᵀ W x + b); without it the model cannot filter the interference between features.", () => Toy(relu: false, bias: true)),
                    new Bug("You left out the bias b (added before the ReLU).", () => Toy(relu: true, bias: false)),
                ]);
            }),
            new("ImportanceLoss", "the importance-weighted reconstruction loss", [], () =>
            {
                var actual = learner.ImportanceLoss(x, xHat, importance);
                var expected = (importance * (x - xHat).pow(2)).mean();
                Expect.Close("ImportanceLoss(x, x̂, importance)", actual, expected, atol: 1e-6, rtol: 1e-4,
                    factorHint: "Average over the batch and the features (mean), rather than summing.", bugs:
                    [
                        new Bug("Weight each feature's squared error by its importance I_i.", () => (x - xHat).pow(2).mean()),
                        new Bug("Square the error: (x − x̂)², not |x − x̂|.", () => (importance * (x - xHat).abs()).mean()),
                        new Bug("The loss is one number: average over the batch and the features (you left a dimension).", () => (importance * (x - xHat).pow(2)).mean([0])),
                    ]);
            }),
            new("Dimensionality", "each feature's dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)²", [], () =>
            {
                var actual = learner.Dimensionality(W.clone());
                Expect.Close("Dimensionality(W)", actual, Dimensionalities(unit: true), atol: 1e-5, rtol: 1e-4, bugs:
                    new Bug("In the denominator use the unit vector Ŵ_i = W_i / ‖W_i‖ (you used W_i itself).", () => Dimensionalities(unit: false)));
                if (actual is not null && actual.sum().item<float>() is var total && total > d + 1e-3)
                    throw new CheckFailure($"the dimensionalities sum to {total:0.###}, more than the {d} dimensions there are.");
                Checker.Plot($"Your feature dimensionalities D_i of a random W ({n} features in {d} dimensions; they sum to at most {d})",
                    LearnPlots.Lines([("D_i", LearnPlots.Values(actual!))], "feature i", "dimensionality", yMin: 0));
            }),
            new("SaeEncode", "an SAE's encoder (SAELens's standard SAE): f = ReLU((x − b_dec) W_enc + b_enc)", [], () =>
            {
                var actual = learner.SaeEncode(saeX.clone(), sae.W_enc.detach(), sae.b_enc!.detach(), sae.b_dec.detach());
                using var _ = no_grad();
                Expect.Close("SaeEncode(x, W_enc, b_enc, b_dec)", actual, sae.Encode(saeX), bugs:
                [
                    new Bug("Subtract b_dec from the input before encoding: SAELens centres x on the decoder bias.", () => Encode(subtractBDec: false, relu: true)),
                    new Bug("Apply the ReLU: feature activations are never negative.", () => Encode(subtractBDec: true, relu: false)),
                ]);
            }),
            new("SaeLoss", "the SAE's loss: ‖x̂ − x‖² + λ Σ_i f_i ‖W_dec,i‖, each averaged over the batch", [], () =>
            {
                using var _ = no_grad();
                var f = sae.Encode(saeX);
                var recon = sae.Decode(f);
                var actual = learner.SaeLoss(saeX.clone(), recon, f, sae.W_dec.detach(), 0.3);
                Expect.Close("SaeLoss(x, x̂, f, W_dec, 0.3)", actual, Loss(saeX, recon, f, 0.3, decoderNorms: true, mseMeanOverD: false), atol: 1e-5, rtol: 1e-4, bugs:
                [
                    new Bug("Weight each feature's L1 term by its decoder row's norm ‖W_dec,i‖ (SAELens's standard SAE), else shrinking f and growing W_dec cheats the penalty.",
                        () => Loss(saeX, recon, f, 0.3, decoderNorms: false, mseMeanOverD: false)),
                    new Bug("The reconstruction error sums the squares over the d_in dimensions and averages over the batch (you averaged over both).",
                        () => Loss(saeX, recon, f, 0.3, decoderNorms: true, mseMeanOverD: true)),
                    new Bug("You left out the sparsity penalty λ Σ_i f_i ‖W_dec,i‖.", () => Loss(saeX, recon, f, 0.0, decoderNorms: true, mseMeanOverD: false)),
                ]);
            }),
            new("TrainSae", $"train an SAE on a toy model of superposition ({Features} features in {Dims} dimensions) until it recovers the true features (mean best cosine ≥ {RequiredCosine})",
                ["SaeEncode", "SaeLoss"], () =>
            {
                using var toy = new ToySuperposition(Features, Dims, ActiveProbability, seed: 1);
                var decoder = learner.TrainSae(index => toy.Sample(256, index), Dims, DSae);
                if (decoder is null) throw new CheckFailure("TrainSae returned null: return your decoder's weights W_dec.");
                if (!decoder.shape.SequenceEqual(new long[] { DSae, Dims }))
                    throw new CheckFailure($"TrainSae's decoder has shape {Expect.Shape(decoder)} but should have [{DSae}, {Dims}] ([d_sae, d_in]: one row per feature).");
                if (!decoder.isfinite().all().item<bool>()) throw new CheckFailure("TrainSae's decoder has NaN or infinite weights: is your learning rate too high?");
                double cosine = toy.MeanBestCosine(decoder);
                double dense = ToySuperposition.MeanBestCosine(toy.Directions, eye(Dims));
                if (cosine >= RequiredCosine)
                {
                    var truth = toy.Directions / toy.Directions.norm(1, keepdim: true);           // [features, d_in]
                    var rows = decoder / decoder.norm(1, keepdim: true);                          // [d_sae, d_in]
                    var cosines = truth.MatMul(rows.t());                                         // [features, d_sae]
                    var best = cosines.max(1).values.sort(descending: true).Values;               // [features]
                    Checker.Plot($"Each true feature's best cosine with one of your SAE's decoder rows (mean {cosine:0.000}; {RequiredCosine} needed)",
                        LearnPlots.Lines([("best cosine", LearnPlots.Values(best)), ("needed (mean)", Enumerable.Repeat(RequiredCosine, Features).ToArray())], "true feature (sorted)", "cosine", yMin: 0));
                    Checker.Plot("Cosines of the true features (rows) with your decoder rows (columns)",
                        LearnPlots.Heatmap(cosines.abs(), i => $"f{i}", j => $"{j}", "true feature", "decoder row", 0, 1, cell: 8));
                }
                if (cosine < RequiredCosine)
                    throw new CheckFailure($"your SAE's decoder recovers the true features with a mean best cosine of {cosine:0.000}; it needs {RequiredCosine}. " +
                        (cosine < dense + 0.1 ? $"That is close to what any basis of the space gets ({dense:0.00}): is the sparsity penalty (l1) on and positive? " : "") +
                        "Train longer, or check that the decoder rows are normalised after each step.");
            }),
        ];
    }
}
