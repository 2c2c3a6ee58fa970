using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// One index element of a trace, written as C# writes ranges: <c>t.Blocks[1].Output[.., ^1]</c> is NumPy's
/// <c>[:, -1]</c>. Converts from int, <see cref="System.Index"/> and <see cref="System.Range"/>; <see cref="Ellipsis"/> is <c>...</c>.
/// </summary>
public readonly struct TraceIndex
{
    readonly string _text;
    TraceIndex(string text) => _text = text;

    public static readonly TraceIndex Ellipsis = new("...");

    /// <summary>start:stop:step (null parts omitted), e.g. Slice(null, null, 2) is "::2".</summary>
    public static TraceIndex Slice(long? start, long? stop, long? step = null) => new($"{start}:{stop}{(step is null ? "" : $":{step}")}");

    public static implicit operator TraceIndex(int i) => new(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
    public static implicit operator TraceIndex(long i) => new(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
    public static implicit operator TraceIndex(Index i) => new(Text(i));
    public static implicit operator TraceIndex(Range r) =>
        new($"{(r.Start.Equals(System.Index.Start) ? "" : Text(r.Start))}:{(r.End.Equals(System.Index.End) ? "" : Text(r.End))}");

    static string Text(Index i) => (i.IsFromEnd ? -i.Value : i.Value).ToString(System.Globalization.CultureInfo.InvariantCulture);

    internal static string Format(TraceIndex[] index) => "[" + string.Join(", ", index.Select(i => i._text)) + "]";

    public override string ToString() => _text;
}

/// <summary>
/// A value inside a trace: an activation read at a hook, a constant, or an expression over them. Nothing is computed
/// while the trace is built; arithmetic (<c>+ - * /</c>) and the methods here add to the plan, which runs on
/// <see cref="Tracer.Run"/>. Doubles and tensors convert to constants.
/// </summary>
public class TraceValue
{
    internal PlanExpr Expr { get; }
    internal Tracer? Owner { get; }
    internal IReadOnlyDictionary<string, Tensor> Constants { get; }

    internal TraceValue(PlanExpr expr, Tracer? owner, IReadOnlyDictionary<string, Tensor>? constants = null)
    {
        Expr = expr;
        Owner = owner;
        Constants = constants ?? new Dictionary<string, Tensor>();
    }

    static int _constantCount;

    public static implicit operator TraceValue(double value) => new(PlanExpr.OfScalar(value), null);

    /// <summary>A tensor as a constant of the plan (sent as float32 when the plan runs remotely).</summary>
    public static implicit operator TraceValue(Tensor value)
    {
        string name = $"c{Interlocked.Increment(ref _constantCount)}";
        return new(PlanExpr.OfConst(name), null, new Dictionary<string, Tensor> { [name] = value });
    }

    internal static TraceValue Combine(string op, params TraceValue[] args) => Combine(PlanExpr.Call(op, [.. args.Select(a => a.Expr)]), args);

    internal static TraceValue Combine(PlanExpr expr, TraceValue[] args)
    {
        var owners = args.Select(a => a.Owner).Where(o => o is not null).Distinct().ToList();
        if (owners.Count > 1) throw new PlanValidationException("A value from one trace is used in another; each trace's values belong to it (save it and pass the tensor instead).");
        var constants = new Dictionary<string, Tensor>();
        foreach (var a in args) foreach (var (k, v) in a.Constants) constants[k] = v;
        return new TraceValue(expr, owners.FirstOrDefault(), constants);
    }

    public static TraceValue operator +(TraceValue a, TraceValue b) => Combine("add", a, b);
    public static TraceValue operator -(TraceValue a, TraceValue b) => Combine("sub", a, b);
    public static TraceValue operator *(TraceValue a, TraceValue b) => Combine("mul", a, b);
    public static TraceValue operator /(TraceValue a, TraceValue b) => Combine("div", a, b);
    public static TraceValue operator -(TraceValue a) => Combine("neg", a);

    public TraceValue MatMul(TraceValue other) => Combine("matmul", this, other);
    public TraceValue Exp() => Combine("exp", this);
    public TraceValue Log() => Combine("log", this);
    public TraceValue Abs() => Combine("abs", this);
    public TraceValue Sqrt() => Combine("sqrt", this);
    public TraceValue Relu() => Combine("relu", this);
    public TraceValue Tanh() => Combine("tanh", this);
    public TraceValue Sigmoid() => Combine("sigmoid", this);
    public TraceValue ZerosLike() => Combine("zeros_like", this);
    public TraceValue OnesLike() => Combine("ones_like", this);
    public TraceValue Mean(params long[] dims) => Reduce("mean", dims, false);
    public TraceValue Sum(params long[] dims) => Reduce("sum", dims, false);
    public TraceValue Max(params long[] dims) => Reduce("max", dims, false);
    public TraceValue Norm(params long[] dims) => Reduce("norm", dims, false);
    public TraceValue LogSumExp(params long[] dims) => Reduce("logsumexp", dims, false);
    public TraceValue Softmax(long dim = -1) => Reduce("softmax", [dim], false);
    public TraceValue LogSoftmax(long dim = -1) => Reduce("log_softmax", [dim], false);
    public TraceValue Argmax(long dim = -1) => Reduce("argmax", [dim], false);
    /// <summary>The model's final norm applied to this residual, as the logit lens does.</summary>
    public TraceValue LnFinal() => Combine("ln_final", this);
    /// <summary>This residual through the unembedding: logits.</summary>
    public TraceValue Unembed() => Combine("unembed", this);

    TraceValue Reduce(string op, long[] dims, bool keepDim) =>
        Combine(new PlanExpr { Op = op, Args = [Expr], Dims = dims.Length == 0 ? null : [.. dims], KeepDim = keepDim }, [this]);

    /// <summary>Concatenates (cat) or stacks values along <paramref name="dim"/>.</summary>
    public static TraceValue Cat(long dim, params TraceValue[] values) => Combine(new PlanExpr { Op = "cat", Args = [.. values.Select(v => v.Expr)], Dims = [dim] }, values);
    public static TraceValue Stack(long dim, params TraceValue[] values) => Combine(new PlanExpr { Op = "stack", Args = [.. values.Select(v => v.Expr)], Dims = [dim] }, values);

    /// <summary>Indexes the value (NumPy basic indexing); on a hook's value, setting writes into the activation.</summary>
    public virtual TraceValue this[params TraceIndex[] index]
    {
        get => Combine(new PlanExpr { Op = "index", Args = [Expr], Index = TraceIndex.Format(index) }, [this]);
        set => throw new PlanValidationException("Only a hook's activation can be written to (t.Blocks[1].Output[.., ^1] = ...); this value is computed.");
    }

    /// <summary>Keeps the value past the trace: read it from the returned handle after <see cref="Tracer.Run"/>.</summary>
    public Saved Save(string? name = null) =>
        (Owner ?? throw new PlanValidationException("Only values that depend on the trace can be saved; this one is a constant."))
            .AddSave(this, name);
}

/// <summary>A hook's activation in one invoke and step (nnsight's <c>.output</c>): read, write or index it.</summary>
public sealed class HookValue : TraceValue
{
    readonly TraceScope _scope;
    internal string Hook { get; }

    internal HookValue(TraceScope scope, string hook, string id) : base(PlanExpr.OfRef(id), scope.Owner) => (_scope, Hook) = (scope, hook);

    /// <summary>
    /// Getting an index indexes the value as it was read (later code may use it anywhere after); setting it writes into
    /// the activation at the hook, which the forward pass then runs on with.
    /// </summary>
    public override TraceValue this[params TraceIndex[] index]
    {
        get => base[index];
        set => _scope.Write(Hook, TraceIndex.Format(index), value);
    }

    /// <summary>The gradient of the backward value with respect to this activation (needs <see cref="Tracer.Backward"/>).</summary>
    public TraceValue Grad => _scope.ReadGrad(Hook, null);

    public override string ToString() => Hook;
}

/// <summary>A saved value: <see cref="Value"/> after the trace has run; <see cref="Steps"/> when saved at several generation steps.</summary>
public sealed class Saved : TraceValue
{
    public string Name { get; }

    internal Saved(TraceValue value, string name) : base(value.Expr, value.Owner, value.Constants) => Name = name;

    internal TraceResult? Result { get; set; }

    public Tensor Value => (Result ?? throw NotRun())[Name];
    public IReadOnlyList<Tensor> Steps => (Result ?? throw NotRun()).Steps(Name);

    PlanValidationException NotRun() => new($"'{Name}' has no value yet: a trace's values exist once it has run (call Run() on the tracer).");

    public override string ToString() => Name;
}
