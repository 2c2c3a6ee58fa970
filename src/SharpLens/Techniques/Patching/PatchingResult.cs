using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// A sweep's result: <see cref="Values"/> (float32, CPU) shaped by <see cref="Dims"/>, e.g. [layer, pos] or [layer, head],
/// normalised so 0 = the corrupted run's metric and 1 = the clean run's.
/// </summary>
public sealed class PatchingResult(string component, IReadOnlyList<string> dims, Tensor values, double cleanMetric, double corruptedMetric, int forwardPasses) : IDisposable
{
    public string Component { get; } = component;
    public IReadOnlyList<string> Dims { get; } = dims;
    public Tensor Values { get; } = values;
    /// <summary>The metric (mean over pairs) of the clean and of the corrupted prompts, unpatched.</summary>
    public double CleanMetric { get; } = cleanMetric;
    public double CorruptedMetric { get; } = corruptedMetric;
    /// <summary>Forward passes the sweep took, counting the clean and corrupted runs.</summary>
    public int ForwardPasses { get; } = forwardPasses;

    /// <summary>The values of a 2-D result as a [row, column] array, e.g. for a heatmap.</summary>
    public float[,] ToArray2D()
    {
        if (Values.dim() != 2) throw new SharpLensException($"This {Component} result has {Values.dim()} dimensions ({string.Join(", ", Dims)}); only 2-D results convert to a table.");
        long rows = Values.shape[0], cols = Values.shape[1];
        var flat = Values.contiguous().data<float>().ToArray();
        var table = new float[rows, cols];
        for (long r = 0; r < rows; r++) for (long c = 0; c < cols; c++) table[r, c] = flat[r * cols + c];
        return table;
    }

    public void Dispose() => Values.Dispose();
}
