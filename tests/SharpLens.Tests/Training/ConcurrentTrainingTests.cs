using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Training;

/// <summary>
/// Trainings on several threads at once, each compared with the same training run alone. Every run has its own
/// seeded generators, so the concurrent runs must reproduce the lone runs bit for bit; anything one run leaked into
/// process-wide libtorch state (thread count, default generator, grad mode, dtype) would show up as a difference, and a
/// native race as a crash (see <see cref="HeldScalars"/> for the one found).
/// </summary>
public class ConcurrentTrainingTests
{
    const int Vocab = 16, Length = 12;
    static readonly Scalar VocabScalar = Vocab, LengthScalar = Length;

    /// <summary>What a run leaves behind: its losses and its final parameters, copied out of the run's tensors.</summary>
    sealed record Outcome(double[] Losses, Dictionary<string, float[]> Parameters);

    static Outcome TrainTransformer(long modelSeed, int trainingSeed, int layers, int steps = 30)
    {
        using var model = new HookedTransformer(new ModelConfig
        {
            DModel = 32, NLayers = layers, NHeads = 2, DHead = 16, DMlp = 64, DVocab = Vocab, NCtx = Length,
        }, seed: modelSeed);
        var settings = new TrainingSettings { Steps = steps, LearningRate = 1e-2, WarmupSteps = 5, Seed = trainingSeed };
        var record = Trainer.Train(model, settings, (_, g) =>
        {
            // Counting sequences from a random start; the Scalars are held, like the library's (see HeldScalars).
            var start = randint(0, Vocab, [16, 1], generator: g, dtype: ScalarType.Int64);
            return new TrainingBatch(start.Plus(arange(LengthScalar, dtype: ScalarType.Int64)).remainder(VocabScalar)); // [16, Length]
        });
        return new Outcome([.. record.Losses], Copy(model.named_parameters()));
    }

    static Dictionary<string, float[]> Copy(IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter)> parameters) =>
        parameters.ToDictionary(p => p.Name, p => p.Parameter.detach().to(ScalarType.Float32).data<float>().ToArray());

    /// <summary>Runs each job on its own new thread, all started together; rethrows the first failure.</summary>
    static Outcome[] OnThreads(params Func<Outcome>[] jobs)
    {
        var outcomes = new Outcome[jobs.Length];
        var failures = new Exception?[jobs.Length];
        using var start = new Barrier(jobs.Length);
        var threads = jobs.Select((job, i) => new Thread(() =>
        {
            try { start.SignalAndWait(); outcomes[i] = job(); }
            catch (Exception e) { failures[i] = e; }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        foreach (var failure in failures) if (failure is not null) throw new AggregateException(failure);
        return outcomes;
    }

    static void AssertSame(Outcome alone, Outcome together, string run)
    {
        Assert.Equal(alone.Losses, together.Losses);
        foreach (var (name, values) in alone.Parameters)
            Assert.True(values.AsSpan().SequenceEqual(together.Parameters[name]), $"{run}: {name} differs from the run alone");
    }

    static Outcome First() => TrainTransformer(modelSeed: 3, trainingSeed: 5, layers: 1);
    static Outcome Second() => TrainTransformer(modelSeed: 4, trainingSeed: 9, layers: 2);

    [Fact]
    public void Two_trainings_on_two_threads_at_once_match_each_run_alone()
    {
        // The lone runs also get a fresh thread each, so the only difference from the concurrent runs is the other run.
        var firstAlone = OnThreads(First)[0];
        var secondAlone = OnThreads(Second)[0];
        var together = OnThreads(First, Second);

        AssertSame(firstAlone, together[0], "first run");
        AssertSame(secondAlone, together[1], "second run");
    }

    [Fact]
    public void Training_beside_a_thread_that_collects_garbage_without_pause_matches_training_alone()
    {
        // The worst case for a Scalar or tensor that TorchSharp does not keep alive through a native call: collections
        // and finalizers run all the time on another thread (before HeldScalars this crashed inside AdamW's step).
        static Outcome Long() => TrainTransformer(modelSeed: 4, trainingSeed: 9, layers: 2, steps: 100);
        var alone = OnThreads(Long)[0];
        using var done = new CancellationTokenSource();
        var together = OnThreads(() => { try { return Long(); } finally { done.Cancel(); } }, () =>
        {
            while (!done.IsCancellationRequested) { GC.Collect(0); GC.WaitForPendingFinalizers(); } // temporaries die young: gen 0 finds them
            return new Outcome([], new());
        });
        AssertSame(alone, together[0], "training");
    }
}
