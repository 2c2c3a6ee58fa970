using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>How a probe was fitted.</summary>
public enum ProbeKind { Logistic, MeanDifference }

/// <summary>
/// A linear read-out of activations: scores = x Wᵀ + b, in the activations' own units (any standardisation used in
/// fitting is folded back in). Binary probes have one row (score &gt; 0 means class 1); multinomial ones a row per class.
/// </summary>
public sealed class LinearProbe : IDisposable
{
    /// <summary>[rows, d] with rows = 1 for a binary probe, else the number of classes.</summary>
    public Tensor Weight { get; }
    /// <summary>[rows]</summary>
    public Tensor Bias { get; }
    public ProbeKind Kind { get; }
    public int Classes { get; }
    public bool IsBinary => Classes == 2;

    internal LinearProbe(Tensor weight, Tensor bias, ProbeKind kind, int classes) => (Weight, Bias, Kind, Classes) = (weight, bias, kind, classes);

    /// <summary>[n] for a binary probe (the logit of class 1), else [n, classes].</summary>
    /// <param name="activations">[n, d]</param>
    public Tensor Scores(Tensor activations)
    {
        var x = activations.to(Weight.dtype).to(Weight.device);
        var scores = x.MatMul(Weight.t()) + Bias; // [n, rows]
        return IsBinary ? scores.squeeze(1) : scores;
    }

    /// <summary>The predicted class of each row: [n] int64.</summary>
    public Tensor Predict(Tensor activations)
    {
        using var scope = NewDisposeScope();
        var scores = Scores(activations);
        return (IsBinary ? (scores > 0).to(ScalarType.Int64) : scores.argmax(-1)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The direction the probe reads, [d]: for a binary probe the weight (pointing towards class 1); for a multinomial
    /// one, the weight of <paramref name="positiveClass"/> minus the mean of the others. Use it for steering.
    /// </summary>
    public Tensor Direction(int positiveClass = 1)
    {
        if (IsBinary) return Weight[0].clone();
        if (positiveClass < 0 || positiveClass >= Classes) throw new ArgumentOutOfRangeException(nameof(positiveClass), $"the probe has classes 0…{Classes - 1}.");
        using var scope = NewDisposeScope();
        var others = cat([Weight[..positiveClass], Weight[(positiveClass + 1)..]], 0).mean([0]); // [d]
        return (Weight[positiveClass] - others).MoveToOuterDisposeScope();
    }

    public void Dispose() { Weight.Dispose(); Bias.Dispose(); }
}
