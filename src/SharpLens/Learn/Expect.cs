using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Learn;

/// <summary>
/// A typical wrong answer: what the output would be with that bug, and the message that names it. A learner whose
/// output matches <see cref="Produces"/> reads <see cref="Message"/> instead of a bare "values differ".
/// </summary>
public sealed record Bug(string Message, Func<Tensor> Produces);

/// <summary>
/// Compares a learner's tensor with SharpLens's, and says how they differ: null, shape, dtype, NaN, a known bug, a
/// constant factor, or where the largest difference is. Tolerances follow ARENA's module tests (atol 1e-4, rtol 1e-3).
/// </summary>
public static class Expect
{
    public static void Close(string what, Tensor? actual, Tensor expected, double atol = 1e-4, double rtol = 1e-3,
        string? factorHint = null, Action? beforeGeneric = null, params Bug[] bugs)
    {
        if (actual is null) throw new CheckFailure($"{what} is null: return the tensor you computed.");
        if (!actual.shape.SequenceEqual(expected.shape))
        {
            if (Matching(actual, bugs, atol, rtol) is { } bug) throw new CheckFailure(bug.Message);
            string hint = actual.numel() == expected.numel()
                ? " The number of elements is right: a transpose, or a reshape/view in the wrong order?"
                : actual.dim() == expected.dim() - 1 && actual.shape.SequenceEqual(expected.shape.Skip(1))
                    ? " The batch dimension is missing."
                    : "";
            throw new CheckFailure($"{what} has shape {Shape(actual)} but should have {Shape(expected)}.{hint}");
        }
        if (actual.dtype != expected.dtype)
            throw new CheckFailure($"{what} has dtype {actual.dtype} but should have {expected.dtype} (the inputs' dtype): keep float32 throughout.");
        var a = actual.detach().to(ScalarType.Float64);
        var e = expected.detach().to(ScalarType.Float64);
        if (AllClose(a, e, atol, rtol)) return;
        if (Matching(actual, bugs, atol, rtol) is { } known) throw new CheckFailure(known.Message);
        var aNaN = a.isnan();
        if (aNaN.any().item<bool>() && !e.isnan().any().item<bool>())
            throw new CheckFailure($"{what} has NaN at {Index(aNaN.nonzero()[0])} ({aNaN.sum().item<long>()} of {a.numel()} values) where SharpLens has numbers.");
        var finite = a.isfinite().logical_and(e.isfinite());
        double ee = (e.where(finite, 0) * e.where(finite, 0)).sum().item<double>();
        if (ee > 0 && finite.all().item<bool>())
        {
            double c = (a * e).sum().item<double>() / ee;
            if (Math.Abs(c - 1) > 1e-3 && Math.Abs(c) > 1e-6 && AllClose(a, e * c, atol, rtol))
                throw new CheckFailure($"{what} is SharpLens's value times {c:0.####} (off by a constant factor).{(factorHint is null ? "" : " " + factorHint)}");
        }
        beforeGeneric?.Invoke();
        var diff = (a - e).abs().nan_to_num(nan: double.PositiveInfinity);
        long flat = diff.flatten().argmax().item<long>();
        var index = Unravel(flat, expected.shape);
        throw new CheckFailure($"{what} differs from SharpLens's: the largest difference is {diff.max().item<double>():g3} at {Index(index)} " +
            $"(expected {e.flatten()[flat].item<double>():g6}, got {a.flatten()[flat].item<double>():g6}).");
    }

    /// <summary>Fails if the learner's code changed an input in place (compare with a clone taken before the call).</summary>
    public static void Unchanged(string name, Tensor before, Tensor after)
    {
        if (!before.shape.SequenceEqual(after.shape) || !before.eq(after).all().item<bool>())
            throw new CheckFailure($"your code changed its input {name} in place (an operation ending in _, such as sub_ or masked_fill_): work on a new tensor instead.");
    }

    /// <summary>Each row along the last dimension sums to 1 (a probability distribution), or the message says which does not.</summary>
    public static void RowsSumToOne(string what, Tensor pattern, string hint)
    {
        var sums = pattern.detach().to(ScalarType.Float64).sum(-1);
        var off = (sums - 1).abs() > 1e-4;
        if (off.any().item<bool>())
        {
            var where = off.nonzero()[0];
            throw new CheckFailure($"{what}: the row at {Index(where)} sums to {sums[[.. where.data<long>().ToArray().Select(i => TensorIndex.Single(i))]].item<double>():g4}, not 1. {hint}");
        }
    }

    internal static bool AllClose(Tensor a, Tensor e, double atol, double rtol)
    {
        if (!a.shape.SequenceEqual(e.shape)) return false;
        var a64 = a.detach().to(ScalarType.Float64);
        var e64 = e.detach().to(ScalarType.Float64);
        return a64.allclose(e64, rtol, atol, equal_nan: true);
    }

    static Bug? Matching(Tensor actual, Bug[] bugs, double atol, double rtol)
    {
        foreach (var bug in bugs)
        {
            Tensor wrong;
            try { wrong = bug.Produces(); }
            catch (Exception) { continue; }
            if (AllClose(actual, wrong, atol, rtol)) return bug;
        }
        return null;
    }

    internal static string Shape(Tensor t) => $"[{string.Join(", ", t.shape)}]";

    static string Index(Tensor where) => $"[{string.Join(", ", where.data<long>().ToArray())}]";
    static string Index(long[] where) => $"[{string.Join(", ", where)}]";

    static long[] Unravel(long flat, long[] shape)
    {
        var index = new long[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--) { index[d] = flat % shape[d]; flat /= shape[d]; }
        return index;
    }
}
