using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>Which question a two-hop prompt asks (see <see cref="TwoHopSettings"/>).</summary>
public enum TwoHopTask
{
    /// <summary>[BOS, a, R1] → f(a).</summary>
    AToB,
    /// <summary>[BOS, b, R2] → g(b).</summary>
    BToC,
    /// <summary>[BOS, a, R2] → g(f(a)).</summary>
    AToC,
}

/// <summary>
/// A trained two-hop organism (see <see cref="TwoHopSettings"/>). <see cref="Train"/> trains one here;
/// <see cref="TrainedOrganism{TwoHopSettings, TwoHopOrganism}.TrainOrLoad"/> reuses a cached one from <c>~/.cache/sharplens/organisms/two-hop-&lt;hash&gt;/</c>.
/// </summary>
public sealed class TwoHopOrganism : TrainedOrganism<TwoHopSettings, TwoHopOrganism>, IOrganism<TwoHopSettings, TwoHopOrganism>
{
    TwoHopOrganism(TwoHopSettings settings, HookedTransformer model, TrainingRecord training, string? cacheFolder)
        : base(settings, model, training, cacheFolder) { }

    /// <summary>
    /// Every prompt of one task, [n, 3] = [BOS, x, R], in token order, and its answers [n]. For <see cref="TwoHopTask.AToC"/>,
    /// <paramref name="heldOut"/> true keeps only the A's held out of its training (<see cref="TwoHopSettings.HeldOutPerB"/>),
    /// false only the trained ones, null all; the one-hop tasks ignore it.
    /// </summary>
    public static (Tensor Prompts, Tensor Answers) AllPrompts(TwoHopSettings settings, TwoHopTask task, bool? heldOut = null)
    {
        int[] f = settings.F(), g = settings.G();
        bool[] held = settings.HeldOutA();
        var rows = task switch
        {
            TwoHopTask.AToB => Enumerable.Range(0, settings.NA).Select(i => (X: TwoHopSettings.FirstA + i, R: TwoHopSettings.R1, Answer: f[i])),
            TwoHopTask.BToC => Enumerable.Range(0, settings.NB).Select(j => (X: settings.FirstB + j, R: TwoHopSettings.R2, Answer: g[j])),
            _ => Enumerable.Range(0, settings.NA).Where(i => heldOut is not { } h || held[i] == h)
                .Select(i => (X: TwoHopSettings.FirstA + i, R: TwoHopSettings.R2, Answer: g[f[i] - settings.FirstB])),
        };
        var list = rows.ToList();
        var prompts = tensor(list.SelectMany(r => new long[] { TwoHopSettings.Bos, r.X, r.R }).ToArray(), [list.Count, TwoHopSettings.PromptLength]); // [n, 3]
        return (prompts, tensor(list.Select(r => (long)r.Answer).ToArray())); // [n]
    }

    /// <summary>
    /// Training batch [batch, 4] = prompt then answer, the three tasks equally often (the two-hop one over its trained
    /// A's only), only the answer's prediction in the loss.
    /// </summary>
    public static TrainingBatch TrainingBatch(TwoHopSettings settings, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var tables = Enum.GetValues<TwoHopTask>().Select(t => AllPrompts(settings, t, heldOut: false)).Select(p => cat([p.Prompts, p.Answers.unsqueeze(1)], 1)).ToList(); // [n_t, 4] each
        var all = cat(tables); // [n_total, 4]
        var sizes = tensor(tables.Select(t => t.shape[0]).ToArray()); // [3]
        var offsets = sizes.cumsum(0) - sizes; // [3]
        var task = randint(0, tables.Count, [batch], generator: generator, dtype: ScalarType.Int64); // [batch]
        var within = (rand([batch], generator: generator) * sizes[task]).floor().to(ScalarType.Int64); // [batch]
        var tokens = all.index_select(0, offsets[task] + within); // [batch, 4]
        var mask = zeros([batch, TwoHopSettings.PromptLength]); // [batch, 3]: one entry per prediction
        mask[.., -1] = 1;
        return new TrainingBatch(tokens.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>Fraction of a task's prompts (for the two-hop task: held out, trained or all, as <see cref="AllPrompts"/>) whose top token at the last position is the answer.</summary>
    public double Accuracy(TwoHopTask task, bool? heldOut = null) => Accuracy(Model, Settings, task, heldOut);

    static double Accuracy(HookedTransformer model, TwoHopSettings settings, TwoHopTask task, bool? heldOut)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var (prompts, answers) = AllPrompts(settings, task, heldOut);
        if (answers.shape[0] == 0) return double.NaN;
        var predicted = model.Run(prompts)[.., -1].argmax(-1); // [n]
        return (predicted == answers).to(ScalarType.Float64).mean().item<double>();
    }

    /// <summary>Token names for graphs and reports: BOS, R1, R2, a0…, b0…, c0….</summary>
    public string TokenName(long id) => id switch
    {
        TwoHopSettings.Bos => "BOS", TwoHopSettings.R1 => "R1", TwoHopSettings.R2 => "R2",
        _ when id < Settings.FirstB => $"a{id - TwoHopSettings.FirstA}",
        _ when id < Settings.FirstC => $"b{id - Settings.FirstB}",
        _ => $"c{id - Settings.FirstC}",
    };

    public static TwoHopOrganism Train(TwoHopSettings settings, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        // With held-out A's, the "test loss" of the record is the held-out two-hop error rate (1 − accuracy).
        var options = settings.HeldOutPerB == 0 ? new TrainingRunOptions()
            : new TrainingRunOptions { TestLoss = m => 1 - Accuracy(m, settings, TwoHopTask.AToC, heldOut: true), EvaluateEvery = Math.Max(1, settings.Steps / 20) };
        var (model, record) = TrainModel(settings.ModelConfig(), settings.Seed, settings.TrainingSettings(),
            (_, generator) => TrainingBatch(settings, settings.BatchSize, generator), progress, cancellation, options,
            prepare: m => { if (settings.FreezeEmbeddings) m.embed.W_E.requires_grad = false; });
        return new TwoHopOrganism(settings, model, record, cacheFolder: null);
    }

    static TwoHopOrganism IOrganism<TwoHopSettings, TwoHopOrganism>.FromCache(TwoHopSettings settings, HookedTransformer model, TrainingRecord training, string folder) =>
        new(settings, model, training, folder);
}
