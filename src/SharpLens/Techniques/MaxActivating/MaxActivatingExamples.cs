using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Tokenization;
using static TorchSharp.torch;

namespace SharpLens.Techniques.MaxActivating;

/// <summary>
/// One place where the target fired: sequence <paramref name="Sequence"/> (its index in the corpus, counting from 0
/// across all batches), position <paramref name="Position"/>, and the tokens around it: <paramref name="Context"/> holds
/// the tokens from Position − ContextOffset on, and <c>Context[ContextOffset]</c> is the token at Position.
/// </summary>
public sealed record ActivationExample(long Sequence, int Position, double Activation, int[] Context, int ContextOffset)
{
    public int Token => Context[ContextOffset];
}

public sealed record MaxActivatingSettings
{
    /// <summary>How many of the highest activations to keep.</summary>
    public int TopK { get; init; } = 20;
    /// <summary>Tokens kept before and after each example's position.</summary>
    public int ContextBefore { get; init; } = 10;
    public int ContextAfter { get; init; } = 3;
    public int HistogramBins { get; init; } = 50;
    /// <summary>Fixed histogram range; when null it is the first batch's [min, max] widened by half its span on each side.</summary>
    public (double Min, double Max)? HistogramRange { get; init; }
    /// <summary>Lines per forward pass when the corpus is text.</summary>
    public int BatchSize { get; init; } = 16;
    /// <summary>Ignore position 0: with BOS there, many neurons fire on it whatever the text says.</summary>
    public bool SkipFirstPosition { get; init; }

    public MaxActivatingSettings Validated()
    {
        if (TopK < 1) throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "TopK must be at least 1.");
        if (ContextBefore < 0 || ContextAfter < 0) throw new ArgumentOutOfRangeException(nameof(ContextBefore), "Context sizes must be non-negative.");
        if (HistogramBins < 1) throw new ArgumentOutOfRangeException(nameof(HistogramBins), HistogramBins, "HistogramBins must be at least 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be at least 1.");
        return this;
    }
}

/// <summary>The top activations, highest first, the distribution of all of them, and how much was read.</summary>
public sealed record MaxActivatingResult(ActivationTarget Target, IReadOnlyList<ActivationExample> Top, ActivationHistogram Histogram,
    long Sequences, long Positions);

/// <summary>
/// Max-activating examples of a neuron or direction over a corpus streamed in batches. Memory is bounded whatever the
/// corpus size: one batch's activations at a time, the top k in a min-heap (a new activation enters only if it beats the
/// smallest kept), and a fixed-bin histogram.
/// </summary>
public static class MaxActivatingExamples
{
    /// <summary>Over batches of token ids [batch, pos] (sequences of one length, no padding).</summary>
    public static MaxActivatingResult Find(HookedRootModule model, ActivationTarget target, IEnumerable<Tensor> batches,
        MaxActivatingSettings? settings = null) =>
        Run(model, target, batches.Select(b => (b, (Tensor?)null)), settings ?? new());

    /// <summary>
    /// Over lines of text, each tokenized with the model's tokenizer (BOS first), batched <see cref="MaxActivatingSettings.BatchSize"/>
    /// at a time with right padding (padding never counts); lines longer than the context are cut at n_ctx tokens.
    /// </summary>
    public static MaxActivatingResult Find(HookedTransformer model, ActivationTarget target, IEnumerable<string> lines,
        MaxActivatingSettings? settings = null)
    {
        settings = (settings ?? new()).Validated();
        int nCtx = model.Config.NCtx;
        var batches = lines.Chunk(settings.BatchSize).Select(chunk =>
        {
            var (tokens, mask) = model.ToTokens(chunk, prependBos: true, PaddingSide.Right); // [batch, pos]
            if (tokens.shape[1] > nCtx) (tokens, mask) = (tokens[.., ..nCtx], mask[.., ..nCtx]);
            return (tokens, (Tensor?)mask);
        });
        return Run(model, target, batches, settings);
    }

    static MaxActivatingResult Run(HookedRootModule model, ActivationTarget target, IEnumerable<(Tensor Tokens, Tensor? Mask)> batches,
        MaxActivatingSettings settings)
    {
        settings = settings.Validated();
        model.GetHookPoint(target.Hook); // an unknown hook fails here, before any forward pass
        var heap = new PriorityQueue<ActivationExample, ActivationExample>(settings.TopK + 1, LowestFirst.Instance);
        ActivationHistogram? histogram = settings.HistogramRange is var (lo, hi) ? new ActivationHistogram(lo, hi, settings.HistogramBins) : null;
        long sequences = 0, positions = 0;

        foreach (var (batchTokens, batchMask) in batches)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var tokens = HeadDetectors.AsBatch(batchTokens);
            long batch = tokens.shape[0], pos = tokens.shape[1];
            var (_, cache) = model.RunWithCache(tokens, [target.Hook], batchMask);
            Tensor acts;
            using (cache) acts = target.Read(cache[target.Hook]).to(ScalarType.Float64).cpu(); // [batch, pos]

            var valid = batchMask is null ? ones(batch, pos, dtype: ScalarType.Bool) : batchMask.cpu().to(ScalarType.Bool).clone(); // [batch, pos]
            if (settings.SkipFirstPosition) valid[.., 0] = false;
            var kept = acts[valid];
            if (kept.shape[0] > 0)
            {
                histogram ??= FirstBatchHistogram(kept, settings.HistogramBins);
                histogram.Add(kept);
            }
            positions += kept.shape[0];

            // Only the batch's own top k can enter the overall top k.
            int k = (int)Math.Min(settings.TopK, kept.shape[0]);
            if (k > 0)
            {
                var (values, flatIndex) = acts.masked_fill(valid.logical_not(), double.NegativeInfinity).flatten().topk(k);
                var ids = tokens.cpu().to(ScalarType.Int32);
                var lengths = valid.sum(1).data<long>().ToArray();
                var vs = values.data<double>().ToArray();
                var ix = flatIndex.data<long>().ToArray();
                for (int i = 0; i < k; i++)
                {
                    int b = (int)(ix[i] / pos), p = (int)(ix[i] % pos);
                    var candidate = new ActivationExample(sequences + b, p, vs[i], [], 0);
                    if (heap.Count == settings.TopK && LowestFirst.Instance.Compare(candidate, heap.Peek()) <= 0) continue;
                    // Right padding: the real tokens of row b are the first lengths[b] (plus position 0 when skipped).
                    long end = batchMask is null ? pos : lengths[b] + (settings.SkipFirstPosition ? 1 : 0);
                    int start = Math.Max(0, p - settings.ContextBefore);
                    int stop = (int)Math.Min(end, p + settings.ContextAfter + 1);
                    var context = ids[b, start..stop].data<int>().ToArray();
                    candidate = candidate with { Context = context, ContextOffset = p - start };
                    if (heap.Count == settings.TopK) heap.DequeueEnqueue(candidate, candidate);
                    else heap.Enqueue(candidate, candidate);
                }
            }
            sequences += batch;
        }

        var top = new List<ActivationExample>(heap.Count);
        while (heap.Count > 0) top.Add(heap.Dequeue());
        top.Reverse();
        return new MaxActivatingResult(target, top, histogram ?? new ActivationHistogram(0, 1, settings.HistogramBins), sequences, positions);
    }

    static ActivationHistogram FirstBatchHistogram(Tensor values, int bins)
    {
        double min = values.min().item<double>(), max = values.max().item<double>();
        double margin = max > min ? (max - min) / 2 : Math.Max(1e-6, Math.Abs(max) / 2);
        return new ActivationHistogram(min - margin, max + margin, bins);
    }

    /// <summary>Heap order: lowest activation first; among equal ones the later example first, so earlier examples are kept.</summary>
    sealed class LowestFirst : IComparer<ActivationExample>
    {
        public static readonly LowestFirst Instance = new();
        public int Compare(ActivationExample? x, ActivationExample? y)
        {
            int c = x!.Activation.CompareTo(y!.Activation);
            if (c != 0) return c;
            c = y.Sequence.CompareTo(x.Sequence);
            return c != 0 ? c : y.Position.CompareTo(x.Position);
        }
    }
}
