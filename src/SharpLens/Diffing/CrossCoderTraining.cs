using System.Diagnostics;
using SharpLens.Models;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>What a crosscoder training run did: tokens, time, the store's peak rows and memory, the last progress report.</summary>
public sealed record CrossCoderTrainingRun(long Tokens, double Seconds, long PeakBufferedRows, long BufferBytes, CrossCoderTrainingProgress? Last)
{
    public double TokensPerSecond => Tokens / Math.Max(Seconds, 1e-9);
}

/// <summary>
/// Trains a crosscoder on the paired activations of several models at one hook: contexts run through every model
/// (<see cref="PairedActivations"/>), position 0 and special tokens left out, rows shuffled in an <see cref="ActivationStore"/>
/// whose buffer bounds the memory (<c>BufferRows × M × d × 4</c> bytes plus one model call), batches fed to
/// <see cref="CrossCoderTrainer"/>.
/// </summary>
public static class CrossCoderTraining
{
    /// <param name="contexts">An endless (or long enough) stream of token contexts.</param>
    /// <param name="config">The crosscoder's kind; its ActivationDim and NumLayers are set from the models.</param>
    /// <param name="resume">A trainer resumed from a checkpoint: the batches it has already seen are drawn and dropped first, so its data replays exactly.</param>
    public static (CrossCoderTrainer Trainer, CrossCoderTrainingRun Run) Train(IReadOnlyList<HookedTransformer> models, string hook,
        IEnumerable<long[]> contexts, CrossCoderConfig config, CrossCoderTrainingSettings settings, ActivationStoreOptions store,
        IReadOnlyCollection<int>? excludedTokenIds = null, int contextsPerCall = 8, IProgress<CrossCoderTrainingProgress>? progress = null,
        long seed = 0, IReadOnlyList<string>? modelNames = null, CrossCoderTrainer? resume = null)
    {
        var reader = PairedActivations.Reader(models, hook, modelNames);
        int d = PairedActivations.Check(models, hook, modelNames);
        int m = models.Count;
        config = config with { ActivationDim = d, NumLayers = m };
        using var activations = ActivationStore.FromModel(reader, Contexts.Batches(contexts, contextsPerCall), store, excludedTokenIds ?? ExcludedTokens(models[0]));
        var trainer = resume ?? new CrossCoderTrainer(new CrossCoder(config, seed), settings);
        try
        {
            for (int s = 0; s < trainer.Step; s++) activations.NextBatch()?.Dispose(); // the batches the checkpoint has already seen
            var clock = Stopwatch.StartNew();
            long tokens = 0;
            CrossCoderTrainingProgress? last = null;
            var reporter = new Reporter(p => { last = p; progress?.Report(p); });
            trainer.Train(_ =>
            {
                using var chunk = activations.NextBatch() ?? throw new DiffingException("The text ran out before training ended; give a longer corpus or fewer --tokens.");
                tokens += chunk.Rows;
                return PairedActivations.AsCrosscoderInput(chunk.Input, m).clone(); // [batch, M, d], freed with the step's scope
            }, reporter);
            clock.Stop();
            return (trainer, new CrossCoderTrainingRun(tokens, clock.Elapsed.TotalSeconds, activations.PeakBufferedRows, activations.Capacity * m * d * 4L, last));
        }
        catch
        {
            if (resume is null) { trainer.CrossCoder.Dispose(); trainer.Dispose(); }
            throw;
        }
    }

    /// <summary>BOS and padding ids of a model, which activation stores leave out.</summary>
    public static IReadOnlyList<int> ExcludedTokens(HookedTransformer model)
    {
        var tokenizer = model.TokenizerIfSet ?? (model.Config.TokenizerName is not null ? model.Tokenizer : null);
        int?[] special = [model.Config.BosTokenId, tokenizer?.BosTokenId, tokenizer?.PadTokenId];
        return [.. special.OfType<int>().Distinct()];
    }

    sealed class Reporter(Action<CrossCoderTrainingProgress> report) : IProgress<CrossCoderTrainingProgress>
    {
        public void Report(CrossCoderTrainingProgress value) => report(value);
    }
}
