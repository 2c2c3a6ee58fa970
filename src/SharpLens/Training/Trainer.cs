using System.Diagnostics;
using SharpLens.Loading;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Training;

/// <summary>One batch: token ids, and which predictions count towards the loss.</summary>
/// <param name="Tokens">[batch, pos] token ids.</param>
/// <param name="LossMask">[batch, pos - 1], 1 where the prediction of the next token counts; null counts them all.</param>
/// <param name="Targets">What a custom loss (<see cref="TrainingRunOptions.Loss"/>) compares with, e.g. [batch] answers; next-token loss ignores it.</param>
public sealed record TrainingBatch(Tensor Tokens, Tensor? LossMask = null, Tensor? Targets = null);

/// <summary>Trains a <see cref="HookedTransformer"/> with AdamW, on next-token prediction or a loss of the caller's.</summary>
public static class Trainer
{
    const int CollectEvery = 10;

    /// <summary>
    /// Runs <see cref="TrainingSettings.Steps"/> steps. <paramref name="nextBatch"/> is called once per step with the
    /// step and a generator seeded from <see cref="TrainingSettings.Seed"/>, so a run is reproducible.
    /// </summary>
    public static TrainingRecord Train(HookedTransformer model, TrainingSettings settings,
        Func<int, Generator, TrainingBatch> nextBatch, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default) => Train(model, settings, nextBatch, new TrainingRunOptions(), progress, cancellation);

    /// <summary>
    /// As above, with a loss function, a held-out loss, checkpoints and resuming (see <see cref="TrainingRunOptions"/>).
    /// For full-batch training, let <paramref name="nextBatch"/> return the whole training set every step.
    /// </summary>
    public static TrainingRecord Train(HookedTransformer model, TrainingSettings settings,
        Func<int, Generator, TrainingBatch> nextBatch, TrainingRunOptions options, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        options = options.Validated();
        // Frozen parameters are neither updated nor decayed; names key AdamW's state in checkpoints.
        using var adamW = new NamedAdamW(model.named_parameters().Where(p => p.parameter.requires_grad), settings);
        var optimizer = adamW.Optimizer;
        var parameters = adamW.Parameters.Select(p => p.Parameter).ToList();
        using var generator = new Generator((ulong)settings.Seed);
        var losses = new List<double>(settings.Steps);
        var testLosses = new List<EvaluatedLoss>();
        var written = new List<int>();
        var checkpointAt = new HashSet<int>(options.CheckpointSteps.Where(s => s <= settings.Steps));
        if (options.CheckpointFolder is not null) checkpointAt.Add(settings.Steps);

        int start = 0;
        var before = TimeSpan.Zero;
        var refused = new List<string>();
        void Refused(string message) { refused.Add(message); options.Log?.Invoke(message); }
        if (options.CheckpointFolder is not null) CheckpointManifest.RemoveTemporaries(options.CheckpointFolder); // a killed run's half-written checkpoint
        if (options.Resume && TrainingCheckpoint.LatestValid(options.CheckpointFolder!, settings.Steps, Refused) is { } checkpoint)
        {
            var state = checkpoint.ReadState();
            if (state.Seed != settings.Seed)
                throw new CheckpointException(Path.Combine(checkpoint.Folder, TrainingCheckpoint.StateFile), null, $"field 'Seed' is {state.Seed}, but this run's seed (--seed) is {settings.Seed}: resume with the same seed, or use another checkpoint folder.");
            checkpoint.LoadInto(model);
            checkpoint.LoadOptimizerInto(adamW);
            using (var generatorState = tensor(Convert.FromBase64String(state.GeneratorState))) generator.set_state(generatorState);
            (start, before) = (state.Step, TimeSpan.FromSeconds(state.ElapsedSeconds));
            losses.AddRange(state.Losses);
            testLosses.AddRange(state.TestLosses);
        }

        using Scalar microBatches = settings.MicroBatches; // held through every step (see HeldScalars)
        var clock = Stopwatch.StartNew();
        TimeSpan Elapsed() => before + clock.Elapsed;
        double? lastTest = testLosses.Count > 0 ? testLosses[^1].Loss : null;
        model.train();
        try
        {
            for (int step = start; step < settings.Steps; step++)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                double lr = settings.LearningRateAt(step);

                var batch = nextBatch(step, generator);
                optimizer.zero_grad();
                double loss = 0;
                foreach (var micro in MicroBatches(batch, settings.MicroBatches))
                {
                    var microLoss = options.Loss is { } lossOf ? lossOf(model, micro) : NextTokenLoss(model, micro.Tokens, micro.LossMask);
                    if (settings.MicroBatches > 1) microLoss = microLoss.div(microBatches);
                    microLoss.backward();
                    loss += microLoss.ToDouble();
                }
                if (settings.MaxGradNorm is double maxNorm) nn.utils.clip_grad_norm_(parameters, maxNorm);
                adamW.Step(lr);
                losses.Add(loss);

                int done = step + 1;
                if (options.TestLoss is { } testLoss && (done % options.EvaluateEvery == 0 || done == settings.Steps))
                {
                    lastTest = Evaluate(model, testLoss);
                    testLosses.Add(new EvaluatedLoss(done, lastTest.Value));
                }
                if (checkpointAt.Contains(done))
                {
                    using var generatorState = generator.get_state();
                    var state = new TrainerState(done, settings.Seed, [.. losses], [.. testLosses], Elapsed().TotalSeconds,
                        Convert.ToBase64String(generatorState.data<byte>().ToArray()));
                    TrainingCheckpoint.Save(options.CheckpointFolder!, model, adamW, state);
                    written.Add(done);
                }
                progress?.Report(new TrainingProgress(done, settings.Steps, losses[^1], lr, Elapsed(), lastTest));
                // Autograd and AdamW leave tensor wrappers outside any dispose scope; their native memory (tens of MB a
                // step on a full batch) is freed only by finalisers, which .NET would not run soon enough on its own.
                if (done % CollectEvery == 0) { GC.Collect(); GC.WaitForPendingFinalizers(); }
            }
        }
        finally
        {
            model.eval();
        }
        return new TrainingRecord(losses, Elapsed())
        {
            TestLosses = testLosses,
            ResumedFrom = start > 0 ? start : null,
            CheckpointsWritten = written,
            CheckpointsRefused = refused,
        };
    }

    /// <summary>The batch cut into <paramref name="count"/> equal parts along its first dimension (itself when count is 1).</summary>
    static IEnumerable<TrainingBatch> MicroBatches(TrainingBatch batch, int count)
    {
        if (count == 1) { yield return batch; yield break; }
        long rows = batch.Tokens.shape[0];
        if (rows % count != 0)
            throw new ArgumentException($"A batch of {rows} rows cannot be split into {count} equal micro-batches; make the batch a multiple of TrainingSettings.MicroBatches.", "MicroBatches");
        long size = rows / count;
        for (long i = 0; i < count; i++)
        {
            var rowsOf = TensorIndex.Slice(i * size, (i + 1) * size);
            yield return new TrainingBatch(batch.Tokens[rowsOf], batch.LossMask?[rowsOf], batch.Targets?[rowsOf]);
        }
    }

    /// <summary>The last complete checkpoint at or before <paramref name="maxStep"/> whose files match its manifest, if any.</summary>
    public static TrainingCheckpoint? LatestCheckpoint(string folder, int maxStep) => TrainingCheckpoint.LatestValid(folder, maxStep);

    static double Evaluate(HookedTransformer model, Func<HookedTransformer, double> testLoss)
    {
        model.eval();
        try
        {
            using var _ = no_grad();
            return testLoss(model);
        }
        finally
        {
            model.train();
        }
    }

    /// <summary>Mean cross-entropy of predicting token t+1 from positions ≤ t, over the positions the mask keeps.</summary>
    /// <param name="lossMask">[batch, pos - 1]; null keeps every prediction.</param>
    public static Tensor NextTokenLoss(HookedTransformer model, Tensor tokens, Tensor? lossMask = null)
    {
        var perToken = PerTokenLoss(model, tokens); // [batch, pos - 1]
        if (lossMask is null) return perToken.mean();
        if (!lossMask.shape.SequenceEqual(perToken.shape))
            throw new ArgumentException(
                $"lossMask has shape {ShapeText.Of(lossMask.shape)} but there are {ShapeText.Of(perToken.shape)} predictions " +
                "(one per position but the last); give a [batch, pos - 1] mask.", nameof(lossMask));
        var mask = lossMask.to(perToken.dtype);
        return (perToken * mask).sum() / mask.sum().clamp_min(HeldScalars.One);
    }

    /// <summary>Cross-entropy of each next-token prediction: [batch, pos - 1], entry t for predicting token t+1.</summary>
    public static Tensor PerTokenLoss(HookedTransformer model, Tensor tokens)
    {
        if (tokens.dim() == 1) tokens = tokens.unsqueeze(0);
        var logits = model.Run(tokens)[.., ..^1]; // [batch, pos - 1, d_vocab]
        var logProbs = logits.log_softmax(-1);
        var targets = tokens[.., 1..].to(ScalarType.Int64).to(logits.device).unsqueeze(-1); // [batch, pos - 1, 1]
        return -logProbs.gather(-1, targets).squeeze(-1); // [batch, pos - 1]
    }
}
