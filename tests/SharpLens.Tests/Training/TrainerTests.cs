using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Training;

public class TrainerTests
{
    const int Vocab = 16, Length = 12;

    static HookedTransformer TinyModel() => new(new ModelConfig
    {
        DModel = 32, NLayers = 1, NHeads = 2, DHead = 16, DVocab = Vocab, NCtx = Length, AttnOnly = true,
    }, seed: 3);

    /// <summary>Counting sequences t, t+1, t+2, … (mod vocab) from a random start: learnable from the current token alone.</summary>
    static TrainingBatch Counting(Generator generator)
    {
        var start = randint(0, Vocab, [16, 1], generator: generator, dtype: ScalarType.Int64);
        return new TrainingBatch((start + arange(Length, dtype: ScalarType.Int64)) % Vocab); // [16, Length]
    }

    [Fact]
    public void Training_lowers_the_loss_on_a_learnable_task()
    {
        using var model = TinyModel();
        var settings = new TrainingSettings { Steps = 150, LearningRate = 1e-2, WarmupSteps = 10, Seed = 5 };
        var record = Trainer.Train(model, settings, (_, g) => Counting(g));

        Assert.Equal(150, record.Steps);
        double uniform = Math.Log(Vocab);
        Assert.InRange(record.Losses[0], uniform - 0.5, uniform + 0.5); // starts near a uniform guess
        Assert.True(record.FinalLoss(10) < 0.1 * uniform, $"final loss {record.FinalLoss(10):0.000} vs start {record.Losses[0]:0.000}");
    }

    [Fact]
    public void Same_seed_gives_the_same_run()
    {
        var settings = new TrainingSettings { Steps = 15, LearningRate = 1e-2, WarmupSteps = 5, Seed = 9 };
        using var a = TinyModel();
        using var b = TinyModel();
        var first = Trainer.Train(a, settings, (_, g) => Counting(g));
        var second = Trainer.Train(b, settings, (_, g) => Counting(g));
        Assert.Equal(first.Losses, second.Losses);
    }

    [Fact]
    public void Progress_is_reported_once_per_step_with_the_learning_rate_of_the_schedule()
    {
        using var model = TinyModel();
        var settings = new TrainingSettings { Steps = 20, LearningRate = 1e-2, WarmupSteps = 4, Seed = 1 };
        var reports = new List<TrainingProgress>();
        Trainer.Train(model, settings, (_, g) => Counting(g), new Collect(reports));
        Assert.Equal(Enumerable.Range(1, 20), reports.Select(r => r.Step));
        Assert.Equal(settings.LearningRateAt(0), reports[0].LearningRate);
        Assert.Equal(2.5e-3, reports[0].LearningRate, 12); // warmup: 1/4 of the peak
    }

    [Fact]
    public void Cosine_schedule_warms_up_to_the_peak_and_decays_to_the_floor()
    {
        var s = new TrainingSettings { Steps = 110, LearningRate = 1.0, WarmupSteps = 10, MinLearningRateFraction = 0.1 };
        Assert.Equal(0.1, s.LearningRateAt(0), 12);
        Assert.Equal(1.0, s.LearningRateAt(9), 12);
        Assert.Equal(1.0, s.LearningRateAt(10), 12);
        Assert.Equal(0.55, s.LearningRateAt(60), 12); // halfway through the decay: midway between peak and floor
        Assert.Equal(0.1, s.LearningRateAt(110), 12);
        Assert.Equal(1.0, (s with { Schedule = LearningRateSchedule.Constant }).LearningRateAt(100), 12);
    }

    [Fact]
    public void Loss_mask_keeps_only_the_chosen_predictions()
    {
        using var model = TinyModel();
        using var _ = no_grad();
        var tokens = randint(0, Vocab, [2, Length], generator: new Generator(4), dtype: ScalarType.Int64);
        var perToken = Trainer.PerTokenLoss(model, tokens); // [2, Length - 1]
        var mask = zeros(2, Length - 1);
        mask[0, 3] = 1; mask[1, 7] = 1;
        double expected = (perToken[0, 3].item<float>() + perToken[1, 7].item<float>()) / 2;
        Assert.Equal(expected, Trainer.NextTokenLoss(model, tokens, mask).item<float>(), 5);
        Assert.Throws<ArgumentException>(() => Trainer.NextTokenLoss(model, tokens, zeros(2, Length)));
    }

    sealed class Collect(List<TrainingProgress> into) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => into.Add(value);
    }
}
