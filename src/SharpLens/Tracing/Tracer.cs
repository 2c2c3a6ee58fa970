using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>Something that runs plans: a local model (<see cref="LocalTraceBackend"/>) or a server (<see cref="RemoteModel"/>).</summary>
public interface ITraceBackend
{
    TraceLayout Layout { get; }
    TraceResult Run(TracePlan plan, CancellationToken cancel = default);
}

/// <summary>Runs plans on a model in this process.</summary>
public sealed class LocalTraceBackend(TraceTarget target, PlanLimits? limits = null) : ITraceBackend
{
    public TraceTarget Target { get; } = target;
    public TraceLayout Layout => Target.Layout;
    public TraceResult Run(TracePlan plan, CancellationToken cancel = default) => PlanRunner.Run(Target, plan, limits ?? PlanLimits.Local, cancel);
}

/// <summary>
/// nnsight's tracer in C#: a trace is built first, as a plan of reads, writes and saves at named hooks, and runs on
/// <see cref="Run"/> — locally, or on a SharpLens server, with the same code.
/// <code>
/// var t = model.Trace(tokens);
/// var pattern = t.Blocks[1].Attn.Pattern.Save();   // read and keep blocks.1.attn.hook_pattern
/// t.Blocks[0].Output[.., ^1] *= 2;                 // edit blocks.0.hook_resid_post at the last position
/// var logits = t.Output.Save();
/// using var result = t.Run();                       // one forward pass
/// Tensor p = pattern.Value;
/// </code>
/// Several <see cref="Invoke(Tensor)"/>s batch into one forward, each seeing its own rows; values of one invoke can be
/// written into another. <see cref="Generate"/> makes it a generation with per-step access (<see cref="TraceScope.Step"/>,
/// <see cref="TraceScope.AllSteps"/>). Accesses within one invoke must follow the forward order; an access that
/// reaches back is refused naming both hooks.
/// </summary>
public sealed class Tracer : TraceScope
{
    readonly ITraceBackend _backend;
    readonly List<PlanOp> _ops = [];
    readonly List<PlanInvoke> _invokes = [];
    readonly Dictionary<string, Tensor> _constants = [];
    readonly List<Saved> _saved = [];
    readonly IReadOnlyDictionary<string, int> _rank;
    PlanGeneration? _generation;
    int _ids;

    public TraceLayout Layout { get; }

    /// <summary>The result of the last <see cref="Run"/>.</summary>
    public TraceResult? Result { get; private set; }

    public Tracer(ITraceBackend backend) : base(null!, null, null)
    {
        _backend = backend;
        Layout = backend.Layout;
        _rank = Layout.Hooks.Select((h, i) => (h, i)).ToDictionary(p => p.h, p => p.i);
    }

    internal override Tracer Owner => this;

    /// <summary>Adds a prompt (token ids [pos] or [batch, pos]) to the batch; its scope sees only its rows.</summary>
    public TraceScope Invoke(Tensor tokens)
    {
        var t = tokens.dim() == 1 ? tokens.unsqueeze(0) : tokens;
        if (t.dim() != 2 || t.shape[1] == 0)
            throw new PlanValidationException($"Invoke: tokens must be [batch, pos] (or [pos]) token ids; got shape {ShapeText.Of(tokens.shape)}.");
        var ids = t.to(ScalarType.Int64).cpu().data<long>().ToArray();
        long pos = t.shape[1];
        _invokes.Add(new PlanInvoke { Tokens = [.. Enumerable.Range(0, (int)t.shape[0]).Select(b => ids.Skip((int)(b * pos)).Take((int)pos).ToList())] });
        return new TraceScope(this, _invokes.Count - 1, null);
    }

    /// <summary>Adds a prompt as text, tokenized by the model that runs the trace.</summary>
    public TraceScope Invoke(string text)
    {
        _invokes.Add(new PlanInvoke { Text = text });
        return new TraceScope(this, _invokes.Count - 1, null);
    }

    /// <summary>Makes the trace a generation of <paramref name="maxNewTokens"/> tokens (temperature 0: greedy); step k's forward is step k.</summary>
    public Tracer Generate(int maxNewTokens, double temperature = 0, long seed = 0)
    {
        _generation = new PlanGeneration { MaxNewTokens = maxNewTokens, Temperature = temperature, Seed = seed };
        return this;
    }

    /// <summary>Differentiates a scalar value; read gradients with <see cref="HookValue.Grad"/> and save them.</summary>
    public void Backward(TraceValue loss)
    {
        Absorb(loss);
        _ops.Add(new PlanOp { Op = PlanOp.Backward, Value = loss.Expr });
    }

    /// <summary>The trace as a plan: what <see cref="Run"/> sends to the model (or the server). Reads nothing uses are dropped.</summary>
    public TracePlan ToPlan()
    {
        var used = new HashSet<string>();
        foreach (var op in _ops) if (op.Value is not null) CollectRefs(op.Value, used);
        bool IsGradSave(PlanOp op) => op.Op == PlanOp.Save && RefsGrad(op.Value!);
        var kept = _ops.Where(op => op.Op != PlanOp.Read || op.Grad || used.Contains(op.Id!)).ToList();
        // Gradient saves run after the backward op, wherever the C# code asked for them.
        var ordered = kept.Where(op => !IsGradSave(op)).Concat(kept.Where(IsGradSave)).ToList();
        return new TracePlan
        {
            Invokes = [.. _invokes],
            Generate = _generation,
            Constants = _constants.Count == 0 ? null : _constants.ToDictionary(kv => kv.Key, kv => ToPlanTensor(kv.Value)),
            Ops = ordered,
        };

        bool RefsGrad(PlanExpr e) => (e.Ref is { } id && _ops.Any(o => o.Op == PlanOp.Read && o.Grad && o.Id == id)) || (e.Args ?? []).Any(RefsGrad);
    }

    static void CollectRefs(PlanExpr e, HashSet<string> used)
    {
        if (e.Ref is not null) used.Add(e.Ref);
        foreach (var a in e.Args ?? []) CollectRefs(a, used);
    }

    static PlanTensor ToPlanTensor(Tensor t)
    {
        using var f = t.detach().to(ScalarType.Float32).cpu().contiguous();
        return new PlanTensor { Shape = [.. t.shape], Data = [.. f.data<float>()] };
    }

    /// <summary>Runs the trace (one forward pass, or one per generation step) and binds every <see cref="Saved"/> to the result.</summary>
    public TraceResult Run(CancellationToken cancel = default)
    {
        if (_invokes.Count == 0) throw new PlanValidationException("The trace has no input: pass tokens to Trace(...) or call Invoke(...) first.");
        var result = _backend.Run(ToPlan(), cancel);
        foreach (var s in _saved) s.Result = result;
        return Result = result;
    }

    /// <summary>Forward passes the trace makes: one, or one per generated token.</summary>
    internal int StepCount => _generation?.MaxNewTokens ?? 1;

    internal string CheckHook(string hook)
    {
        if (!_rank.ContainsKey(hook))
            throw new PlanValidationException($"{new HookNotFoundException(hook, Layout.Hooks).Message} ({Layout.Name}; '{TracePlan.OutputHook}' is the model's output.)");
        return hook;
    }

    internal string NewId() => $"v{++_ids}";

    internal void Add(PlanOp op) => _ops.Add(op);

    internal int LastRank => _ops.Where(o => o.Hook is not null).Select(o => _rank[o.Hook!]).DefaultIfEmpty(-1).Max();

    internal void Absorb(TraceValue value)
    {
        if (value.Owner is not null && !ReferenceEquals(value.Owner, this))
            throw new PlanValidationException("A value from another trace is used here; each trace's values belong to it.");
        foreach (var (k, v) in value.Constants) _constants[k] = v;
    }

    internal Saved AddSave(TraceValue value, string? name)
    {
        Absorb(value);
        name ??= $"save{_saved.Count}";
        var saved = new Saved(value, name);
        // No steps: the plan saves it at every step at which a value it uses was read.
        _ops.Add(new PlanOp { Op = PlanOp.Save, Name = name, Value = value.Expr });
        _saved.Add(saved);
        return saved;
    }
}

/// <summary>
/// Where accesses apply: one invoke's rows (or the whole batch) at some generation steps. The tree under it names
/// hooks nnsight-style with TransformerLens names: <c>Blocks[l].Input/Output</c>, <c>Blocks[l].Attn.Pattern</c>,
/// <c>Blocks[l].Mlp.Post</c>, <c>Output</c> (logits); <c>this["blocks.0.attn.hook_z"]</c> reaches any hook.
/// </summary>
public class TraceScope
{
    readonly Tracer? _tracer;
    internal int? InvokeIndex { get; }
    internal string? StepText { get; }

    internal TraceScope(Tracer? tracer, int? invoke, string? steps) => (_tracer, InvokeIndex, StepText) = (tracer, invoke, steps);

    internal virtual Tracer Owner => _tracer!;

    /// <summary>The blocks, nnsight's <c>model.transformer.h</c>: <c>Blocks[5].Output</c>.</summary>
    public TraceBlocks Blocks => new(this);

    /// <summary>Any hook by its TransformerLens name; setting it replaces the whole activation.</summary>
    public TraceValue this[string hook]
    {
        get => Read(hook, null);
        set => Write(hook, null, value);
    }

    /// <summary>The embedding entering block 0 (hook_embed; an encoder's hook_full_embed).</summary>
    public TraceValue Embed { get => this[EmbedHook]; set => this[EmbedHook] = value; }

    /// <summary>The model's output (logits [batch, pos, d_vocab]; an encoder's hidden state). Writing it changes what a generation samples from.</summary>
    public TraceValue Output { get => this[TracePlan.OutputHook]; set => this[TracePlan.OutputHook] = value; }

    /// <summary>The final norm's hooks (decoders): <c>LnFinal.Normalized</c>.</summary>
    public TraceNorm LnFinal => new(this, "ln_final");

    string EmbedHook => Owner.Layout.IsEncoder ? "hook_full_embed" : "hook_embed";

    /// <summary>This scope at generation step <paramref name="step"/> (0 is the prompt's forward).</summary>
    public TraceScope Step(int step) => new(Owner, InvokeIndex, step.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>This scope at the steps in <paramref name="steps"/> (end exclusive; ^k from the end).</summary>
    public TraceScope Steps(Range steps)
    {
        int count = Owner.StepCount;
        var (offset, length) = steps.GetOffsetAndLength(count);
        return new(Owner, InvokeIndex, $"{offset}:{offset + length}");
    }

    /// <summary>This scope at every generation step (nnsight's <c>tracer.all()</c>).</summary>
    public TraceScope AllSteps => new(Owner, InvokeIndex, "all");

    /// <summary>Ends the forward pass (or the generation) right after the last hook accessed so far.</summary>
    public void Stop()
    {
        int rank = Owner.LastRank;
        if (rank < 0) throw new PlanValidationException("Stop: nothing has been accessed yet, so there is nowhere to stop; access a hook first.");
        Owner.Add(new PlanOp { Op = PlanOp.Stop, Hook = Owner.Layout.Hooks[rank], Steps = StepText });
    }

    internal HookValue Read(string hook, string? index)
    {
        Owner.CheckHook(hook);
        string id = Owner.NewId();
        Owner.Add(new PlanOp { Op = PlanOp.Read, Id = id, Hook = hook, Invoke = InvokeIndex, Index = index, Steps = StepText });
        return new HookValue(this, hook, id);
    }

    internal TraceValue ReadGrad(string hook, string? index)
    {
        string id = Owner.NewId();
        Owner.Add(new PlanOp { Op = PlanOp.Read, Id = id, Hook = hook, Invoke = InvokeIndex, Index = index, Grad = true });
        return new TraceValue(PlanExpr.OfRef(id), Owner);
    }

    internal void Write(string hook, string? index, TraceValue value)
    {
        Owner.CheckHook(hook);
        Owner.Absorb(value);
        Owner.Add(new PlanOp { Op = PlanOp.Write, Hook = hook, Invoke = InvokeIndex, Index = index, Value = value.Expr, Steps = StepText });
    }
}
