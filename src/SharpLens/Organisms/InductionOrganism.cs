using System.Text.Json;
using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>
/// A trained induction organism (see <see cref="InductionSettings"/>): the model, its training curve, and whether it
/// came from the cache. Train one with <see cref="Train"/> or reuse a cached one with <see cref="TrainedOrganism{InductionSettings, InductionOrganism}.TrainOrLoad"/>.
/// </summary>
public sealed class InductionOrganism : TrainedOrganism<InductionSettings, InductionOrganism>, IOrganism<InductionSettings, InductionOrganism>
{
    InductionOrganism(InductionSettings settings, HookedTransformer model, TrainingRecord training, string? cacheFolder)
        : base(settings, model, training, cacheFolder) { }

    /// <summary>A batch of repeated random sequences: [batch, 2n + 1] = [BOS, r₁…r_n, r₁…r_n], rᵢ uniform in 1…Vocab−1.</summary>
    public static Tensor RepeatedSequences(InductionSettings settings, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var half = randint(1, settings.Vocab, [batch, settings.HalfLength], generator: generator, dtype: ScalarType.Int64); // [batch, n]
        var bos = full([batch, 1], InductionSettings.Bos, dtype: ScalarType.Int64);
        return cat([bos, half, half], 1).MoveToOuterDisposeScope(); // [batch, 2n + 1]
    }

    /// <summary>
    /// Training data: 2n + 1 tokens, [BOS, random…, r₁…r_m, r₁…r_m, random…], with the repeat length m drawn per sequence
    /// from <see cref="InductionSettings.MinRepeatLength"/>…n and the repeat placed at a random offset. A fixed m would let
    /// a layer-0 head solve the task from positions alone (attend to q − m + 1); varying m leaves only the content-based
    /// route, a real induction circuit. The random offset puts every position inside a repeat equally often.
    /// </summary>
    public static Tensor TrainingSequences(InductionSettings settings, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        int n = settings.HalfLength;
        var random = randint(1, settings.Vocab, [batch, 2 * n], generator: generator, dtype: ScalarType.Int64); // [batch, 2n]
        var m = randint(settings.MinRepeatLength, n + 1, [batch, 1], generator: generator, dtype: ScalarType.Int64); // [batch, 1]
        var offset = (rand([batch, 1], generator: generator) * (2 * n - 2 * m + 1)).floor().to(ScalarType.Int64); // [batch, 1] in 0…2n − 2m
        var j = arange(2 * n, dtype: ScalarType.Int64).unsqueeze(0); // [1, 2n]
        var inCopy = (j >= offset + m) & (j < offset + 2 * m);
        var source = where(inCopy, j - m, j); // [batch, 2n]: inside the copy, position j repeats position j − m
        var bos = full([batch, 1], InductionSettings.Bos, dtype: ScalarType.Int64);
        return cat([bos, random.gather(1, source)], 1).MoveToOuterDisposeScope(); // [batch, 2n + 1]
    }

    /// <summary>Trains a fresh organism in this process.</summary>
    public static InductionOrganism Train(InductionSettings settings, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        // Every prediction counts: unrepeated tokens teach nothing but keep the first-half loss an honest baseline (≈ ln vocab).
        var (model, record) = TrainModel(settings.ModelConfig(), settings.Seed, settings.TrainingSettings(),
            (_, generator) => new TrainingBatch(TrainingSequences(settings, settings.BatchSize, generator)), progress, cancellation);
        return new InductionOrganism(settings, model, record, cacheFolder: null);
    }

    static InductionOrganism IOrganism<InductionSettings, InductionOrganism>.FromCache(InductionSettings settings, HookedTransformer model, TrainingRecord training, string folder) =>
        new(settings, model, training, folder);
}
