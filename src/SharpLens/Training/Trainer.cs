using System.Diagnostics;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Training;

/// <summary>One batch: token ids, and which predictions count towards the loss.</summary>
/// <param name="Tokens">[batch, pos] token ids.</param>
/// <param name="LossMask">[batch, pos - 1], 1 where the prediction of the next token counts; null counts them all.</param>
public sealed record TrainingBatch(Tensor Tokens, Tensor? LossMask = null);

/// <summary>Trains a <see cref="HookedTransformer"/> on next-token prediction with AdamW.</summary>
public static class Trainer
{
    /// <summary>
    /// Runs <see cref="TrainingSettings.Steps"/> steps. <paramref name="nextBatch"/> is called once per step with the
    /// step and a generator seeded from <see cref="TrainingSettings.Seed"/>, so a run is reproducible.
    /// </summary>
    public static TrainingRecord Train(HookedTransformer model, TrainingSettings settings,
        Func<int, Generator, TrainingBatch> nextBatch, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        var parameters = model.parameters().ToList();
        using var optimizer = optim.AdamW(parameters, lr: settings.LearningRate, beta1: settings.Beta1, beta2: settings.Beta2,
            weight_decay: settings.WeightDecay);
        using var generator = new Generator((ulong)settings.Seed);
        var losses = new List<double>(settings.Steps);
        var clock = Stopwatch.StartNew();
        model.train();
        try
        {
            for (int step = 0; step < settings.Steps; step++)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                double lr = settings.LearningRateAt(step);
                foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;

                var batch = nextBatch(step, generator);
                optimizer.zero_grad();
                var loss = NextTokenLoss(model, batch.Tokens, batch.LossMask);
                loss.backward();
                if (settings.MaxGradNorm is double maxNorm) nn.utils.clip_grad_norm_(parameters, maxNorm);
                optimizer.step();

                losses.Add(loss.item<float>());
                progress?.Report(new TrainingProgress(step + 1, settings.Steps, losses[^1], lr, clock.Elapsed));
            }
        }
        finally
        {
            model.eval();
        }
        return new TrainingRecord(losses, clock.Elapsed);
    }

    /// <summary>Mean cross-entropy of predicting token t+1 from positions ≤ t, over the positions the mask keeps.</summary>
    /// <param name="lossMask">[batch, pos - 1]; null keeps every prediction.</param>
    public static Tensor NextTokenLoss(HookedTransformer model, Tensor tokens, Tensor? lossMask = null)
    {
        var perToken = PerTokenLoss(model, tokens); // [batch, pos - 1]
        if (lossMask is null) return perToken.mean();
        if (!lossMask.shape.SequenceEqual(perToken.shape))
            throw new ArgumentException(
                $"lossMask has shape [{string.Join(", ", lossMask.shape)}] but there are [{string.Join(", ", perToken.shape)}] predictions " +
                "(one per position but the last); give a [batch, pos - 1] mask.", nameof(lossMask));
        var mask = lossMask.to(perToken.dtype);
        return (perToken * mask).sum() / mask.sum().clamp_min(1);
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
