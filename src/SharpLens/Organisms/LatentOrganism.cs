using System.Text.Json;
using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>Prompts [batch, n + 1] = [BOS, x₁ … x_n], the latent (1 when x₁ ∈ S) [batch], and the answer token [batch].</summary>
public sealed record LatentPrompts(Tensor Tokens, Tensor Latent, Tensor Answers) : IDisposable
{
    /// <summary>The other answer: No where the answer is Yes and the reverse.</summary>
    public Tensor WrongAnswers => LatentSettings.Yes + LatentSettings.No - Answers;

    public void Dispose() { Tokens.Dispose(); Latent.Dispose(); Answers.Dispose(); }
}

/// <summary>
/// A trained planted-latent organism (see <see cref="LatentSettings"/>). <see cref="Train"/> trains one here;
/// <see cref="TrainedOrganism{LatentSettings, LatentOrganism}.TrainOrLoad"/> reuses a cached one from <c>~/.cache/sharplens/organisms/latent-&lt;hash&gt;/</c>.
/// </summary>
public sealed class LatentOrganism : TrainedOrganism<LatentSettings, LatentOrganism>, IOrganism<LatentSettings, LatentOrganism>
{
    LatentOrganism(LatentSettings settings, HookedTransformer model, TrainingRecord training, string? cacheFolder)
        : base(settings, model, training, cacheFolder) { }

    /// <summary>Fresh prompts: the latent is a fair coin, x₁ uniform in S or in its complement accordingly, x₂ … x_n uniform.</summary>
    public static LatentPrompts Prompts(LatentSettings settings, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        var secret = settings.SecretSet();
        var inSet = tensor(secret.Select(t => (long)t).ToArray());
        var outSet = tensor(Enumerable.Range(LatentSettings.FirstContent, settings.ContentCount).Except(secret).Select(t => (long)t).ToArray());
        var latent = randint(0, 2, [batch], generator: generator, dtype: ScalarType.Int64); // [batch]
        var pickIn = inSet.index_select(0, randint(0, inSet.shape[0], [batch], generator: generator, dtype: ScalarType.Int64));
        var pickOut = outSet.index_select(0, randint(0, outSet.shape[0], [batch], generator: generator, dtype: ScalarType.Int64));
        var first = where(latent == 1, pickIn, pickOut).unsqueeze(1); // [batch, 1]
        var rest = randint(LatentSettings.FirstContent, settings.Vocab, [batch, settings.Length - 1], generator: generator, dtype: ScalarType.Int64); // [batch, n - 1]
        var bos = full([batch, 1], LatentSettings.Bos, dtype: ScalarType.Int64);
        var tokens = cat([bos, first, rest], 1); // [batch, n + 1]
        var answers = where(latent == 1, LatentSettings.Yes, LatentSettings.No).to(ScalarType.Int64); // [batch]
        return new LatentPrompts(tokens.MoveToOuterDisposeScope(), latent.MoveToOuterDisposeScope(), answers.MoveToOuterDisposeScope());
    }

    /// <summary>Training batch: prompt then answer, [batch, n + 2], with only the answer's prediction in the loss.</summary>
    public static TrainingBatch TrainingBatch(LatentSettings settings, int batch, Generator generator)
    {
        using var scope = NewDisposeScope();
        using var prompts = Prompts(settings, batch, generator);
        var tokens = cat([prompts.Tokens, prompts.Answers.unsqueeze(1)], 1); // [batch, n + 2]
        var mask = zeros([batch, settings.Length + 1]); // [batch, n + 1]: one entry per prediction
        mask[.., -1] = 1;
        return new TrainingBatch(tokens.MoveToOuterDisposeScope(), mask.MoveToOuterDisposeScope());
    }

    /// <summary>Fraction of prompts whose top token at the last position is the right answer.</summary>
    public double Accuracy(LatentPrompts prompts)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var predicted = Model.Run(prompts.Tokens)[.., -1].argmax(-1); // [batch]
        return (predicted == prompts.Answers).to(ScalarType.Float64).mean().item<double>();
    }

    public static LatentOrganism Train(LatentSettings settings, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        var (model, record) = TrainModel(settings.ModelConfig(), settings.Seed, settings.TrainingSettings(),
            (_, generator) => TrainingBatch(settings, settings.BatchSize, generator), progress, cancellation);
        return new LatentOrganism(settings, model, record, cacheFolder: null);
    }

    static LatentOrganism IOrganism<LatentSettings, LatentOrganism>.FromCache(LatentSettings settings, HookedTransformer model, TrainingRecord training, string folder) =>
        new(settings, model, training, folder);
}
