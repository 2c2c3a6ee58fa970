using System.Runtime.CompilerServices;
using SharpLens.Grokking;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>
/// Chapter 4, grokking: the Fourier view of the modular-addition model (Nanda et al. 2023) on its fast variant
/// (<see cref="ModularAdditionSettings.Fast"/>: p = 31, trained once and cached). The learner builds the real Fourier
/// basis of Z_p, the 2-D transform of a function of (a, b), the embedding's norm per frequency, the key frequencies,
/// and the restricted and excluded logits of the paper's progress measures; each is compared with
/// <see cref="FourierBasis"/>, <see cref="FourierAnalysis"/> and <see cref="ProgressMeasures"/> on random inputs and
/// on the trained model.
/// </summary>
public static class Chapter4
{
    public const int Number = 4;

    /// <summary>The recipe version of the cached chapter model: bump it when the way it is trained changes.</summary>
    const string RecipeVersion = "learn-grokking-1";

    /// <summary>The settings the chapter's model is trained with: the fast variant.</summary>
    public static ModularAdditionSettings Settings => ModularAdditionSettings.Fast;

    /// <summary>The model the checks read; null: the fast variant, trained on first use and cached (<see cref="LoadOrTrain"/>).</summary>
    public static Func<HookedTransformer>? ModelOverride { get; set; }

    public sealed class Exercises
    {
        public required Func<int, Tensor> FourierBasis { get; init; }                        // p → [p, p] float64
        public required Func<Tensor, Tensor, Tensor> Fourier2D { get; init; }                // (f [p, p], F [p, p]) → [p, p]
        public required Func<Tensor, int, Tensor> EmbeddingNorms { get; init; }              // (W_E [d_vocab, d_model], p) → [(p + 1) / 2]
        public required Func<Tensor, int[]> KeyFrequencies { get; init; }                    // norms [(p + 1) / 2] → ascending k ≥ 1
        public required Func<Tensor, int, int[], Tensor> RestrictedLogits { get; init; }     // (logits [p², p], p, keys) → [p², p]
        public required Func<Tensor, int, int[], Tensor> ExcludedLogits { get; init; }       // (logits [p², p], p, keys) → [p², p]
    }

    public static readonly string[] ExerciseNames = ["FourierBasis", "Fourier2D", "EmbeddingNorms", "KeyFrequencies", "RestrictedLogits", "ExcludedLogits"];

    public static int Check(string[] args, Exercises learner, [CallerFilePath] string? file = null) =>
        Checker.Run(Number, args, ExerciseNames, () => Build(learner), file);

    /// <summary>
    /// The fast variant, from the organism cache (<see cref="OrganismCache"/>) or trained there once (about half a
    /// minute on two cores) through <see cref="GrokkingTraining"/>.
    /// </summary>
    public static HookedTransformer LoadOrTrain(string? cacheRoot = null, TextWriter? log = null)
    {
        var settings = Settings;
        string json = settings.ToJson();
        string folder = OrganismCache.FolderFor(OrganismCache.NameFor("grokking-fast", RecipeVersion, json), cacheRoot);
        if (OrganismCache.TryLoad(folder, json) is { } cached) return cached.Model;
        (log ?? Checker.Output ?? Console.Out).WriteLine("Training the fast modular-addition model once (about half a minute; cached afterwards) ...");
        string scratch = Path.Combine(Path.GetTempPath(), $"sharplens-learn-grok-{Guid.NewGuid():N}");
        try
        {
            using var data = new ModularAddition(settings);
            var (model, record) = GrokkingTraining.TrainOrResume(settings, data, scratch);
            model.eval();
            OrganismCache.Save(folder, model, json, record);
            return model;
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }

    static Tensor Double(Tensor? t) => t is null ? null! : t.is_floating_point() ? t.to(ScalarType.Float64) : t;

    /// <summary>The Fourier basis, right or with a bug: cos/sin rows without √(2/p), a constant row of 1, cos and sin swapped, or the angle without 2π.</summary>
    static Tensor Basis(int p, bool normalised = true, bool constantNormalised = true, bool swap = false, bool twoPi = true)
    {
        var rows = new double[p, p];
        for (int x = 0; x < p; x++)
        {
            rows[0, x] = constantNormalised ? 1 / Math.Sqrt(p) : 1;
            for (int k = 1; k <= p / 2; k++)
            {
                double angle = (twoPi ? 2 * Math.PI : 1) * k * x / p, scale = normalised ? Math.Sqrt(2.0 / p) : 1;
                rows[swap ? 2 * k : 2 * k - 1, x] = Math.Cos(angle) * scale;
                rows[swap ? 2 * k - 1 : 2 * k, x] = Math.Sin(angle) * scale;
            }
        }
        return tensor(rows);
    }

    /// <summary>Per-frequency norms with a bug: squared (no square root), or the cos row only.</summary>
    static Tensor Norms(Tensor W_E, int p, bool squaredOnly = false, bool cosOnly = false)
    {
        var squared = FourierBasis.Create(p).MatMul(W_E[..p].to(ScalarType.Float64)).pow(2).sum(1); // [p]
        var values = new List<Tensor> { squared[0] };
        for (int k = 1; k <= p / 2; k++) values.Add(cosOnly ? squared[2 * k - 1] : squared[2 * k - 1] + squared[2 * k]);
        var s = stack(values);
        return squaredOnly ? s : s.sqrt();
    }

    /// <summary>Key frequencies with a bug: norms compared instead of squared norms, or the constant counted in the mean.</summary>
    static int[] Keys(double[] norms, bool squared = true, bool constantInMean = false)
    {
        double Value(int k) => squared ? norms[k] * norms[k] : norms[k];
        int first = constantInMean ? 0 : 1;
        double mean = Enumerable.Range(first, norms.Length - first).Average(Value);
        return [.. Enumerable.Range(1, norms.Length - 1).Where(k => Value(k) >= FourierAnalysis.KeyFactor * mean)];
    }

    static string Text(double[] values) => string.Join(", ", values.Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture)));

    static string List(int[] keys) => keys.Length == 0 ? "none" : string.Join(", ", keys);

    static IReadOnlyList<Exercise> Build(Exercises learner)
    {
        var model = ModelOverride?.Invoke() ?? LoadOrTrain();
        var settings = Settings;
        int p = settings.P;
        var data = new ModularAddition(settings);                                          // kept for the checks (run after Build returns)
        var logits = ProgressMeasures.AllLogits(model, data);                              // [p², p] float64, row a·p + b
        var norms = FourierAnalysis.EmbeddingNorms(model, p);
        var keys = FourierAnalysis.KeyFrequencies(norms);
        var g = new Generator(4);
        var untrained = new HookedTransformer(settings.ModelConfig(), seed: 7);        // random inputs: an untrained model's embedding
        var randomEmbedding = untrained.embed.W_E.detach();                                 // [d_vocab, d_model]
        var randomNorms = FourierAnalysis.EmbeddingNorms(untrained, p);
        const int q = 7;                                                                     // a small p for the random checks
        var randomLogits = randn(q * q, q, dtype: ScalarType.Float64, generator: g);          // [q², q]
        int[] randomKeys = [1, 3];
        var W_E = model.embed.W_E.detach();

        Tensor Centred(Tensor l) => l - l.mean([0], keepdim: true);
        Tensor Unnormalised(Tensor l, int pp, int[] ks)
        {
            var a = arange(pp, dtype: ScalarType.Float64).repeat_interleave(pp);
            var b = arange(pp, dtype: ScalarType.Float64).repeat(pp);
            var columns = ks.SelectMany(k => new[] { ((a + b) * FourierBasis.Omega(k, pp)).cos(), ((a + b) * FourierBasis.Omega(k, pp)).sin() }).ToList();
            return stack(columns, 1); // [p², 2·keys], columns of norm √(p²/2), not 1
        }
        Tensor OnA(Tensor l, int pp, int[] ks)
        {
            var a = arange(pp, dtype: ScalarType.Float64).repeat_interleave(pp);
            var columns = ks.SelectMany(k => new[] { (a * FourierBasis.Omega(k, pp)).cos(), (a * FourierBasis.Omega(k, pp)).sin() }).ToList();
            var d = stack(columns, 1);
            return d / d.norm(0, keepdim: true);
        }
        Tensor Restricted(Tensor l, int pp, int[] ks, bool addMean = true, Func<Tensor, int, int[], Tensor>? directions = null)
        {
            var d = (directions ?? ((_, n, k) => FourierAnalysis.SumDirections(n, k)))(l, pp, ks);
            var projected = d.MatMul(d.t().MatMul(Centred(l)));
            return addMean ? l.mean([0], keepdim: true) + projected : projected;
        }
        Tensor Excluded(Tensor l, int pp, int[] ks, bool centre = false)
        {
            var d = FourierAnalysis.SumDirections(pp, ks);
            var source = centre ? Centred(l) : l;
            return source - d.MatMul(d.t().MatMul(l));
        }

        return
        [
            new("FourierBasis", "the real Fourier basis of Z_p: 1/√p, then cos and sin of 2πkx/p times √(2/p) for k = 1 … (p − 1)/2", [], () =>
            {
                foreach (int pp in new[] { q, p })
                {
                    var actual = learner.FourierBasis(pp);
                    var expected = FourierBasis.Create(pp);
                    if (actual is not null && actual.dtype != ScalarType.Float64)
                        throw new CheckFailure($"FourierBasis({pp}) has dtype {actual.dtype}: build it in float64 (torch.tensor of a double[,], or dtype: ScalarType.Float64), as SharpLens does.");
                    Expect.Close($"FourierBasis({pp})", actual, expected, atol: 1e-9, rtol: 1e-6,
                        beforeGeneric: () =>
                        {
                            var gram = Double(actual).MatMul(Double(actual).t());
                            if (!gram.allclose(eye(pp, dtype: ScalarType.Float64), rtol: 0, atol: 1e-6))
                                throw new CheckFailure($"FourierBasis({pp})'s rows are not orthonormal (F Fᵀ should be the identity): check the angle 2πkx/p and the row order (row 2k − 1 cos k, row 2k sin k).");
                        },
                        bugs:
                        [
                            new Bug("Scale the cos and sin rows by √(2/p) (and the constant row is 1/√p), so the rows are orthonormal: F Fᵀ = I.", () => Basis(pp, normalised: false)),
                            new Bug("Normalise every row: the constant row is 1/√p and the cos and sin rows carry √(2/p).", () => Basis(pp, normalised: false, constantNormalised: false)),
                            new Bug("The constant row is 1/√p, not 1 (its norm must be 1).", () => Basis(pp, constantNormalised: false)),
                            new Bug("Row 2k − 1 is cos k and row 2k is sin k: you swapped them.", () => Basis(pp, swap: true)),
                            new Bug("The angle is 2πkx/p: you left out the 2π.", () => Basis(pp, twoPi: false)),
                        ]);
                }
            }),
            new("Fourier2D", "the 2-D Fourier transform of a function of (a, b): F f Fᵀ", [], () =>
            {
                var F = FourierBasis.Create(p);
                Tensor? yours = null;
                // The logit of answer c = 0 as a function of (a, b), [p, p]; then a random function.
                foreach (var (what, f) in new[] { ("the model's logit of answer 0, as [a, b]", logits[.., 0].reshape(p, p)), ("a random [p, p] function", randn(p, p, dtype: ScalarType.Float64, generator: g)) })
                {
                    var actual = learner.Fourier2D(f.clone(), F.clone());
                    yours ??= actual;
                    Expect.Close($"Fourier2D({what})", actual, F.MatMul(f).MatMul(F.t()), atol: 1e-6, rtol: 1e-6, bugs:
                    [
                        new Bug("Multiply by Fᵀ on the right: F f transforms a (the rows), f Fᵀ transforms b (the columns); F f F is not a transform.", () => F.MatMul(f).MatMul(F)),
                        new Bug("That is the inverse transform Fᵀ f F: the forward transform is F f Fᵀ.", () => F.t().MatMul(f).MatMul(F)),
                        new Bug("Transform both inputs: F f Fᵀ (you transformed only a, the rows).", () => F.MatMul(f)),
                    ]);
                }
                var transformed = Double(yours!).abs();
                var cells = new float[p, p];
                var values = transformed.to(ScalarType.Float32).data<float>().ToArray();
                for (int i = 0; i < p; i++) for (int j = 0; j < p; j++) cells[i, j] = values[i * p + j];
                var labels = Enumerable.Range(0, p).Select(FourierBasis.Name).ToList();
                Checker.Plot("|F f Fᵀ| of the logit of answer 0: the energy sits on a few frequencies (rows: a's basis vector, columns: b's)",
                    Svg.Heatmap(cells, labels, labels, "a", "b", 0, Math.Max(1e-9, transformed.max().item<double>()), cell: 12));
            }),
            new("EmbeddingNorms", "the embedding's norm along each frequency (cos and sin together); entry 0 the constant", ["FourierBasis"], () =>
            {
                foreach (var (what, embedding) in new[] { ("a random embedding", randomEmbedding), ("the trained model's W_E", W_E) })
                {
                    var actual = Double(learner.EmbeddingNorms(embedding.clone(), p));
                    var expected = tensor(ReferenceEquals(embedding, W_E) ? norms : randomNorms); // the library's, from the model
                    Expect.Close($"EmbeddingNorms({what})", actual, expected, atol: 1e-6, rtol: 1e-5, bugs:
                    [
                        new Bug("Take the square root: entry k is the norm √(‖cos k‖² + ‖sin k‖²), not its square.", () => Norms(embedding, p, squaredOnly: true)),
                        new Bug("Count both rows of a frequency: entry k is √(‖cos k‖² + ‖sin k‖²) (you used the cos row only).", () => Norms(embedding, p, cosOnly: true)),
                    ]);
                    if (ReferenceEquals(embedding, W_E))
                    {
                        var xs = Enumerable.Range(0, norms.Length).Select(k => (double)k).ToList();
                        var ys = actual.data<double>().ToArray();
                        Checker.Plot($"Your embedding norms per frequency; the key frequencies ({List(keys)}) hold most of it",
                            Svg.LinePlot([new Series("norm of W_E along frequency k", xs, ys, Svg.Blue)], "frequency k", "norm",
                                markers: [.. keys.Select(k => new Marker(k, $"k={k}"))], yMin: 0));
                    }
                }
            }),
            new("KeyFrequencies", $"the key frequencies: k ≥ 1 whose squared norm is at least {FourierAnalysis.KeyFactor}× the mean over k ≥ 1", [], () =>
            {
                // Made-up norms on which the typical mistakes give other answers (norms instead of squares on the first, the
                // constant in the mean on the second), then the trained model's norms.
                double[] squares = [1, .. Enumerable.Repeat(1.0, 13), 2.5, 5], constant = [6, 1, 1, 1, 1, 1, 1, 3];
                foreach (var (what, values) in new[] { ($"norms [{Text(squares)}]", squares), ($"norms [{Text(constant)}]", constant), ("the trained model's norms", norms) })
                {
                    var actual = learner.KeyFrequencies(tensor(values));
                    var expected = FourierAnalysis.KeyFrequencies(values);
                    if (actual is null) throw new CheckFailure("KeyFrequencies returned null: return the key frequencies as an int array.");
                    if (actual.SequenceEqual(expected)) continue;
                    if (actual.Contains(0)) throw new CheckFailure($"KeyFrequencies({what}) includes 0, the constant: only frequencies k ≥ 1 can be key.");
                    if (actual.OrderBy(k => k).SequenceEqual(expected)) throw new CheckFailure($"KeyFrequencies({what}) has the right frequencies in the wrong order: return them ascending ({List(expected)}).");
                    if (actual.SequenceEqual(Keys(values, squared: false)))
                        throw new CheckFailure($"KeyFrequencies({what}) is [{List(actual)}], SharpLens's [{List(expected)}]: compare squared norms (norm²) with {FourierAnalysis.KeyFactor}× their mean, not the norms themselves.");
                    if (actual.SequenceEqual(Keys(values, constantInMean: true)))
                        throw new CheckFailure($"KeyFrequencies({what}) is [{List(actual)}], SharpLens's [{List(expected)}]: leave the constant (entry 0) out of the mean.");
                    throw new CheckFailure($"KeyFrequencies({what}) is [{List(actual)}] but should be [{List(expected)}].");
                }
            }),
            new("RestrictedLogits", "the restricted logits: each answer's mean plus its projection on cos/sin(w_k(a + b)) for the key k", [], () =>
            {
                foreach (var (what, l, pp, ks) in new[] { ($"random logits (p = {q}, keys {List(randomKeys)})", randomLogits, q, randomKeys), ($"the trained model's logits (keys {List(keys)})", logits, p, keys) })
                {
                    var before = l.clone();
                    var actual = learner.RestrictedLogits(l, pp, ks);
                    Expect.Unchanged("logits", before, l);
                    Expect.Close($"RestrictedLogits({what})", Double(actual), FourierAnalysis.RestrictedLogits(l, pp, ks), atol: 1e-6, rtol: 1e-5, bugs:
                    [
                        new Bug("Add back each answer's mean over the inputs (logits.mean([0])): the restricted model keeps the constant and the key frequencies.", () => Restricted(l, pp, ks, addMean: false)),
                        new Bug("Normalise the directions cos/sin(w_k(a + b)) to unit length before projecting (each has norm √(p²/2)).", () => Restricted(l, pp, ks, directions: Unnormalised)),
                        new Bug("The directions are functions of a + b: cos(w_k(a + b)) and sin(w_k(a + b)), not of a alone (row a·p + b).", () => Restricted(l, pp, ks, directions: OnA)),
                    ]);
                }
                double full = ModularAddition.Loss(logits, data.AllAnswers).item<double>();
                double restricted = ModularAddition.Loss(Double(learner.RestrictedLogits(logits, p, keys)), data.AllAnswers).item<double>();
                Checker.Plot($"Loss on all p² pairs: full {full:0.00e0}, restricted to the key frequencies {restricted:0.00e0}",
                    LossBars([("full", full), ("restricted", restricted)]));
            }),
            new("ExcludedLogits", "the excluded logits: the key frequencies' cos/sin(w_k(a + b)) components removed", [], () =>
            {
                foreach (var (what, l, pp, ks) in new[] { ($"random logits (p = {q}, keys {List(randomKeys)})", randomLogits, q, randomKeys), ($"the trained model's logits (keys {List(keys)})", logits, p, keys) })
                {
                    var before = l.clone();
                    var actual = learner.ExcludedLogits(l, pp, ks);
                    Expect.Unchanged("logits", before, l);
                    Expect.Close($"ExcludedLogits({what})", Double(actual), FourierAnalysis.ExcludedLogits(l, pp, ks), atol: 1e-6, rtol: 1e-5, bugs:
                    [
                        new Bug("Remove only the key frequencies' components: keep each answer's mean (you subtracted it too).", () => Excluded(l, pp, ks, centre: true)),
                        new Bug("That is the restricted model: the excluded one is the logits minus their key-frequency components.", () => FourierAnalysis.RestrictedLogits(l, pp, ks)),
                        new Bug("That is only the key-frequency part (the projection): subtract it from the logits.", () => Restricted(l, pp, ks, addMean: false)),
                    ]);
                }
                var train = Double(learner.ExcludedLogits(logits, p, keys)).index_select(0, data.TrainIndices);
                double excluded = ModularAddition.Loss(train, data.TrainAnswers).item<double>();
                double trainLoss = ModularAddition.Loss(logits.index_select(0, data.TrainIndices), data.TrainAnswers).item<double>();
                double library = ProgressMeasures.Measure(model, data, keys, 0).ExcludedLoss;
                if (Math.Abs(excluded - library) > 1e-6 * Math.Max(1, library))
                    throw new CheckFailure($"your excluded loss on the training pairs is {excluded:g6}, SharpLens's {library:g6}.");
                Checker.Plot($"Loss on the training pairs: the model's {trainLoss:0.00e0}, with the key frequencies excluded {excluded:0.00}: the model needs them",
                    LossBars([("train", trainLoss), ("excluded", excluded)]));
            }),
        ];
    }

    /// <summary>Two or three losses as bars on a log scale, for the chapter's page.</summary>
    static string LossBars(IReadOnlyList<(string Name, double Loss)> losses) =>
        Svg.BarChart([.. losses.Select((l, i) => (l.Name, l.Loss, i == 0 ? Svg.Blue : Svg.Orange))], "loss (log scale)", logX: true);
}
