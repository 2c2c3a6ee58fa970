using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>
/// Logistic-regression probes, binary (sigmoid) and multinomial (softmax), fitted by full-batch Adam on features
/// standardised with the training set's mean and standard deviation; the standardisation is folded back into the
/// returned weights, so the probe reads raw activations.
/// </summary>
public static class LogisticRegression
{
    /// <param name="activations">[n, d]</param>
    /// <param name="labels">[n] class ids 0 … classes − 1</param>
    /// <param name="classes">number of classes; by default max(label) + 1 (at least 2)</param>
    public static LinearProbe Fit(Tensor activations, Tensor labels, ProbeSettings? settings = null, int? classes = null)
    {
        settings = (settings ?? new ProbeSettings()).Validated();
        ProbeData.Check(activations, labels);
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        var x = activations.detach().to(ScalarType.Float32);
        var y = labels.to(ScalarType.Int64).to(x.device);
        int k = classes ?? Math.Max(2, (int)y.max().item<long>() + 1);
        long d = x.shape[1];

        var mean = x.mean([0]); // [d]
        var std = x.std([0]).clamp_min(1e-6); // [d]
        var z = (x - mean) / std; // [n, d]
        int rows = k == 2 ? 1 : k;
        var W = new TorchSharp.Modules.Parameter(zeros([rows, d])); // [rows, d]
        var b = new TorchSharp.Modules.Parameter(zeros([rows])); // [rows]
        using var optimizer = optim.Adam([W, b], lr: settings.LearningRate);
        var targets = y.to(ScalarType.Float32);
        for (int step = 0; step < settings.Steps; step++)
        {
            using var stepScope = NewDisposeScope();
            optimizer.zero_grad();
            var logits = z.MatMul(W.t()) + b; // [n, rows]
            var data = k == 2
                ? nn.functional.binary_cross_entropy_with_logits(logits.squeeze(1), targets)
                : nn.functional.cross_entropy(logits, y);
            var loss = data + settings.L2 * W.pow(2).sum();
            loss.backward();
            optimizer.step();
        }

        using var _ = no_grad();
        var weight = W.detach() / std; // [rows, d]: w·(x − μ)/σ = (w/σ)·x − (w/σ)·μ
        var bias = b.detach() - weight.MatMul(mean); // [rows]
        return new LinearProbe(weight.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope(), ProbeKind.Logistic, k);
    }
}

/// <summary>
/// The difference-of-means probe: direction = mean(class 1) − mean(class 0), threshold halfway between the two means.
/// No fitting to go wrong, and often as good a direction as logistic regression's (Marks &amp; Tegmark, 2023).
/// </summary>
public static class MeanDifferenceProbe
{
    /// <param name="activations">[n, d]</param>
    /// <param name="labels">[n] 0 or 1</param>
    public static LinearProbe Fit(Tensor activations, Tensor labels)
    {
        ProbeData.Check(activations, labels);
        using var scope = NewDisposeScope();
        var x = activations.detach().to(ScalarType.Float32);
        var y = labels.to(ScalarType.Int64).to(x.device);
        if (y.max().item<long>() > 1 || y.min().item<long>() < 0)
            throw new ArgumentException("A mean-difference probe is binary: labels must be 0 or 1.", nameof(labels));
        var one = y == 1;
        if (one.sum().item<long>() == 0 || one.logical_not().sum().item<long>() == 0)
            throw new ArgumentException("Both classes need at least one example to take their means.", nameof(labels));
        var mean1 = x[one].mean([0]);
        var mean0 = x[one.logical_not()].mean([0]);
        var direction = (mean1 - mean0).unsqueeze(0); // [1, d]
        var bias = -(direction.MatMul((mean1 + mean0) / 2)); // [1]
        return new LinearProbe(direction.MoveToOuterDisposeScope(), bias.MoveToOuterDisposeScope(), ProbeKind.MeanDifference, 2);
    }
}

static class ProbeData
{
    public static void Check(Tensor activations, Tensor labels)
    {
        if (activations.dim() != 2)
            throw new ArgumentException($"activations must be [n, d]; got {ShapeText.Of(activations.shape)}. Select one position first.", nameof(activations));
        if (labels.dim() != 1 || labels.shape[0] != activations.shape[0])
            throw new ArgumentException($"labels must be [n] = [{activations.shape[0]}]; got {ShapeText.Of(labels.shape)}.", nameof(labels));
        if (activations.shape[0] < 2) throw new ArgumentException("A probe needs at least two examples.", nameof(activations));
    }
}
