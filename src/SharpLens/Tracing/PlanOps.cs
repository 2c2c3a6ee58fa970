using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// The fixed set of tensor operations a plan's expressions may use; nothing else runs. Each takes its arguments from
/// <c>args</c> and, where it says, <c>dims</c> / <c>keepdim</c> / <c>index</c>:
/// <code>
/// add sub mul div matmul              (2 args, broadcasting)
/// neg abs exp log sqrt relu tanh sigmoid zeros_like ones_like      (1 arg)
/// mean sum max norm logsumexp         (1 arg; dims, keepdim — all dims when dims is absent)
/// softmax log_softmax argmax          (1 arg; dims = [d], default -1)
/// index                               (1 arg; index, NumPy basic indexing)
/// cat stack                           (1+ args; dims = [d], default 0)
/// ln_final                            (1 arg: the model's final norm applied afresh, as the logit lens does)
/// unembed                             (1 arg: x W_U + b_U, residual → logits)
/// </code>
/// </summary>
public static class PlanOps
{
    public enum Kind { Binary, Unary, Reduction, AlongDim, Index, Join, Model }

    public static readonly IReadOnlyDictionary<string, Kind> All = new Dictionary<string, Kind>
    {
        ["add"] = Kind.Binary, ["sub"] = Kind.Binary, ["mul"] = Kind.Binary, ["div"] = Kind.Binary, ["matmul"] = Kind.Binary,
        ["neg"] = Kind.Unary, ["abs"] = Kind.Unary, ["exp"] = Kind.Unary, ["log"] = Kind.Unary, ["sqrt"] = Kind.Unary,
        ["relu"] = Kind.Unary, ["tanh"] = Kind.Unary, ["sigmoid"] = Kind.Unary, ["zeros_like"] = Kind.Unary, ["ones_like"] = Kind.Unary,
        ["mean"] = Kind.Reduction, ["sum"] = Kind.Reduction, ["max"] = Kind.Reduction, ["norm"] = Kind.Reduction, ["logsumexp"] = Kind.Reduction,
        ["softmax"] = Kind.AlongDim, ["log_softmax"] = Kind.AlongDim, ["argmax"] = Kind.AlongDim,
        ["index"] = Kind.Index,
        ["cat"] = Kind.Join, ["stack"] = Kind.Join,
        ["ln_final"] = Kind.Model, ["unembed"] = Kind.Model,
    };

    internal static string Known => string.Join(", ", All.Keys);

    /// <summary>Checks an operation's arity and fields (no tensors involved).</summary>
    internal static void CheckShape(PlanExpr e, string where)
    {
        var kind = All[e.Op!];
        int n = e.Args?.Count ?? 0;
        int expected = kind switch { Kind.Binary => 2, Kind.Join => -1, _ => 1 };
        if (expected > 0 && n != expected)
            throw new PlanValidationException($"{where}: '{e.Op}' takes {expected} argument{(expected == 1 ? "" : "s")} in \"args\"; it has {n}.");
        if (kind == Kind.Join && n == 0) throw new PlanValidationException($"{where}: '{e.Op}' needs at least one argument in \"args\".");
        if (kind is Kind.AlongDim or Kind.Join && e.Dims is { Count: > 1 })
            throw new PlanValidationException($"{where}: '{e.Op}' works along one dimension; \"dims\" has {e.Dims.Count}.");
        if (kind == Kind.Index && e.Index is null) throw new PlanValidationException($"{where}: 'index' needs an \"index\", e.g. \"[:, -1]\".");
        if (kind != Kind.Index && e.Index is not null) throw new PlanValidationException($"{where}: only 'index' takes an \"index\"; '{e.Op}' does not.");
        if (e.Dims is { Count: > 16 }) throw new PlanValidationException($"{where}: \"dims\" lists {e.Dims.Count} dimensions; at most 16.");
    }

    /// <summary>Evaluates one operation on evaluated arguments, refusing results larger than the limit before allocating them.</summary>
    internal static Tensor Apply(PlanExpr e, IReadOnlyList<Tensor> a, TraceTarget target, PlanLimits limits, string where)
    {
        string op = e.Op!;
        try
        {
            switch (All[op])
            {
                case Kind.Binary:
                    var shape = op == "matmul" ? MatmulShape(a[0], a[1], where) : BroadcastShape(a[0].shape, a[1].shape, op, where);
                    Guard(shape, limits, op, where);
                    return op switch
                    {
                        "add" => a[0] + a[1], "sub" => a[0] - a[1], "mul" => a[0] * a[1], "div" => a[0] / a[1],
                        _ => a[0].MatMul(a[1]),
                    };
                case Kind.Unary:
                    return op switch
                    {
                        "neg" => -a[0], "abs" => a[0].abs(), "exp" => a[0].exp(), "log" => a[0].log(), "sqrt" => a[0].sqrt(),
                        "relu" => a[0].relu(), "tanh" => a[0].tanh(), "sigmoid" => a[0].sigmoid(),
                        "zeros_like" => zeros_like(a[0]), _ => ones_like(a[0]),
                    };
                case Kind.Reduction:
                    var dims = e.Dims is null ? Enumerable.Range(0, (int)a[0].dim()).Select(d => (long)d).ToArray() : [.. e.Dims.Select(d => Dim(d, a[0], where))];
                    return op switch
                    {
                        "mean" => a[0].mean(dims, e.KeepDim),
                        "sum" => a[0].sum(dims, e.KeepDim),
                        "norm" => a[0].square().sum(dims, e.KeepDim).sqrt(),
                        "logsumexp" => Reduce(a[0], dims, e.KeepDim, (t, d) => t.logsumexp(d, keepdim: true)),
                        _ => Reduce(a[0], dims, e.KeepDim, (t, d) => t.amax([d], keepdim: true)),
                    };
                case Kind.AlongDim:
                    long dim = Dim(e.Dims?.FirstOrDefault() ?? -1, a[0], where);
                    return op switch
                    {
                        "softmax" => a[0].softmax(dim), "log_softmax" => a[0].log_softmax(dim),
                        _ => a[0].argmax(dim, e.KeepDim),
                    };
                case Kind.Index:
                    return a[0][PlanIndex.Parse(e.Index!, where).ToTensorIndices()];
                case Kind.Join:
                    long along = e.Dims?.FirstOrDefault() ?? 0;
                    long total = a.Sum(t => t.NumberOfElements);
                    if (total > limits.MaxValueElements) throw TooBig(total, limits, op, where);
                    return op == "cat" ? cat([.. a], along) : stack([.. a], along);
                default:
                    return op == "ln_final" ? target.FinalNorm(a[0]) : target.Unembed(a[0]);
            }
        }
        catch (Exception ex) when (ex is not SharpLensException and not OperationCanceledException)
        {
            throw new PlanValidationException($"{where}: '{op}' failed on argument shapes {string.Join(" and ", a.Select(t => ShapeText.Of(t.shape)))}: {ex.Message.Split('\n')[0]}");
        }
    }

    /// <summary>Reduces one dimension at a time, keeping each, then drops them unless keepdim.</summary>
    static Tensor Reduce(Tensor x, long[] dims, bool keepDim, Func<Tensor, long, Tensor> one)
    {
        var t = dims.Aggregate(x, one);
        if (keepDim) return t;
        foreach (var d in dims.Select(d => d < 0 ? d + t.dim() : d).OrderDescending()) t = t.squeeze(d);
        return t;
    }

    static long Dim(long d, Tensor t, string where)
    {
        long rank = Math.Max(1, t.dim());
        if (d < -rank || d >= rank) throw new PlanValidationException($"{where}: dimension {d} is out of range for a value of shape {ShapeText.Of(t.shape)}.");
        return d;
    }

    static long[] BroadcastShape(long[] x, long[] y, string op, string where)
    {
        int n = Math.Max(x.Length, y.Length);
        var result = new long[n];
        for (int i = 0; i < n; i++)
        {
            long a = i < n - x.Length ? 1 : x[i - (n - x.Length)], b = i < n - y.Length ? 1 : y[i - (n - y.Length)];
            if (a != b && a != 1 && b != 1)
                throw new PlanValidationException($"{where}: '{op}' cannot broadcast shapes {ShapeText.Of(x)} and {ShapeText.Of(y)}.");
            result[i] = Math.Max(a, b);
        }
        return result;
    }

    static long[] MatmulShape(Tensor x, Tensor y, string where)
    {
        if (x.dim() < 1 || y.dim() < 1) throw new PlanValidationException($"{where}: 'matmul' needs tensors, not scalars.");
        long k1 = x.shape[^1], k2 = y.dim() == 1 ? y.shape[0] : y.shape[^2];
        if (k1 != k2) throw new PlanValidationException($"{where}: 'matmul' of {ShapeText.Of(x.shape)} and {ShapeText.Of(y.shape)}: inner dimensions {k1} and {k2} differ.");
        var batch = BroadcastShape(x.shape.Length > 2 ? x.shape[..^2] : [], y.shape.Length > 2 ? y.shape[..^2] : [], "matmul", where);
        return [.. batch, .. x.dim() > 1 ? [x.shape[^2]] : Array.Empty<long>(), .. y.dim() > 1 ? [y.shape[^1]] : Array.Empty<long>()];
    }

    static void Guard(long[] shape, PlanLimits limits, string op, string where)
    {
        long n = 1;
        foreach (var d in shape) n = d == 0 ? 0 : n > limits.MaxValueElements / Math.Max(1, d) ? long.MaxValue : n * d;
        if (n > limits.MaxValueElements) throw TooBig(n, limits, op, where);
    }

    static PlanValidationException TooBig(long n, PlanLimits limits, string op, string where) =>
        new($"{where}: '{op}' would make a value of {(n == long.MaxValue ? "more than 2^63" : n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture))} elements; the limit is {limits.MaxValueElements:N0}.");
}
