using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// Runs every cell of a sweep with as few forward passes as memory allows: the base prompts [B, pos] are repeated once
/// per cell along the batch dimension, and a hook replaces, in each copy, only that cell's slice of the activation
/// with the source activation (clean for patching; zero, mean or resampled for ablation).
/// </summary>
internal static class PatchSweepEngine
{
    /// <summary>
    /// The mean metric over the base prompts for each cell, shaped [n_layers, kept dims...] on the CPU (float64).
    /// <paramref name="sources"/> gives, per layer, the replacement activation [B or 1, rest...].
    /// </summary>
    public static (Tensor Values, int ForwardPasses) Run(HookedRootModule model, SweepSpec spec, Tensor baseTokens, Tensor? attentionMask,
        Tensor lastPositions, Tensor answers, Tensor wrongAnswers, IReadOnlyList<Tensor> sources, PatchingOptions options, string label)
    {
        int layers = model.Config.NLayers;
        long batch = baseTokens.shape[0];
        long[] rest = sources[0].shape[1..];
        long[] keptSizes = [.. spec.KeptDims.Select(d => rest[d])];
        long perLayer = keptSizes.Aggregate(1L, (a, b) => a * b);
        int cells = checked((int)(layers * perLayer));
        int rowsPerPass = options.MaxBatchRows ?? RowsForBudget(model.Config, baseTokens.shape[1], options.MemoryBudgetBytes);
        int cellsPerPass = (int)Math.Max(1, rowsPerPass / batch);

        var values = new double[cells];
        int passes = 0;
        using var _ = no_grad();
        for (int start = 0; start < cells; start += cellsPerPass)
        {
            int count = Math.Min(cellsPerPass, cells - start);
            using var scope = NewDisposeScope();
            var hooks = new List<(string, HookFunction)>();
            for (int layer = start / (int)perLayer; layer <= (start + count - 1) / (int)perLayer; layer++)
            {
                var mask = CellMask(spec, rest, perLayer, keptSizes, layer, start, count).to(baseTokens.device); // [cells, 1, rest or 1...]
                var source = sources[layer].unsqueeze(0); // [1, B or 1, rest...]
                hooks.Add((spec.HookName(layer), (activation, _) =>
                {
                    var copies = activation.view([count, batch, .. activation.shape[1..]]); // [cells, B, rest...]
                    return where(mask, source.to(activation.dtype), copies).view(activation.shape);
                }));
            }
            var tokens = baseTokens.repeat(count, 1); // [cells·B, pos]
            var logits = model.RunWithHooks(tokens, hooks, attentionMask?.repeat(count, 1));
            var metric = PatchingMetrics.PerPrompt(options.Metric, logits, lastPositions.repeat(count), answers.repeat(count), wrongAnswers.repeat(count));
            var perCell = metric.view(count, batch).to(ScalarType.Float64).mean([1]).cpu().data<double>().ToArray(); // [cells]
            perCell.CopyTo(values, start);
            passes++;
            options.Progress?.Report(new PatchingProgress(label, start + count, cells, passes));
        }
        return (tensor(values).view([layers, .. keptSizes]), passes);
    }

    /// <summary>
    /// [count, 1, m₀, m₁, ...] true where copy c patches: mᵢ is the size of dimension i when the sweep indexes it, else 1
    /// (broadcast: the whole dimension). Copies whose cell lies in another layer stay all false.
    /// </summary>
    static Tensor CellMask(SweepSpec spec, long[] rest, long perLayer, long[] keptSizes, int layer, int start, int count)
    {
        long[] shape = [count, 1, .. rest.Select((size, d) => spec.KeptDims.Contains(d) ? size : 1)];
        long[] strides = new long[shape.Length];
        strides[^1] = 1;
        for (int d = shape.Length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
        var flags = new bool[shape.Aggregate(1L, (a, b) => a * b)];
        for (int c = 0; c < count; c++)
        {
            long cell = start + c;
            if (cell / perLayer != layer) continue;
            long within = cell % perLayer, offset = c * strides[0];
            for (int k = spec.KeptDims.Length - 1; k >= 0; k--)
            {
                long index = within % keptSizes[k];
                within /= keptSizes[k];
                offset += index * strides[2 + spec.KeptDims[k]];
            }
            flags[offset] = true;
        }
        return tensor(flags).view(shape);
    }

    /// <summary>How many prompt copies fit the memory budget: a rough count of the floats one row's forward pass holds at once.</summary>
    static int RowsForBudget(ModelConfig cfg, long pos, long budgetBytes)
    {
        long perLayer = 6L * cfg.DModel + 4L * cfg.NHeads * cfg.DHead + 2L * cfg.NHeads * pos + (cfg.AttnOnly ? 0 : 2L * cfg.DMlp);
        long floats = pos * (cfg.NLayers * perLayer + 2L * cfg.DVocab);
        return (int)Math.Clamp(budgetBytes / Math.Max(1, floats * 4), 1, int.MaxValue);
    }
}
