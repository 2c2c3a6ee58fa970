using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// <c>model.Trace(...)</c> and <c>model.Run(plan)</c> on every hooked model: decoders, encoders and SAE-spliced models.
/// Pass a <see cref="RemoteModel"/> as remote to run the same trace on a SharpLens server instead (nnsight's <c>remote=True</c>).
/// </summary>
public static class TracingExtensions
{
    public static Tracer Trace(this HookedTransformer model, Tensor? tokens = null, RemoteModel? remote = null) => Start(TraceTarget.Of(model), tokens, remote);
    public static Tracer Trace(this HookedEncoder model, Tensor? tokens = null, RemoteModel? remote = null) => Start(TraceTarget.Of(model), tokens, remote);
    public static Tracer Trace(this HookedSaeTransformer model, Tensor? tokens = null, RemoteModel? remote = null) => Start(TraceTarget.Of(model), tokens, remote);

    /// <summary>Builds a trace, runs it and returns what it saved: <c>using var r = model.Trace(tokens, t => { ... });</c></summary>
    public static TraceResult Trace(this HookedTransformer model, Tensor tokens, Action<Tracer> body) => Body(model.Trace(tokens), body);
    public static TraceResult Trace(this HookedEncoder model, Tensor tokens, Action<Tracer> body) => Body(model.Trace(tokens), body);
    public static TraceResult Trace(this HookedSaeTransformer model, Tensor tokens, Action<Tracer> body) => Body(model.Trace(tokens), body);

    /// <summary>Runs a plan (validated first, with <see cref="PlanLimits.Local"/> unless other limits are given).</summary>
    public static TraceResult Run(this HookedTransformer model, TracePlan plan, PlanLimits? limits = null, CancellationToken cancel = default) =>
        PlanRunner.Run(TraceTarget.Of(model), plan, limits ?? PlanLimits.Local, cancel);
    public static TraceResult Run(this HookedEncoder model, TracePlan plan, PlanLimits? limits = null, CancellationToken cancel = default) =>
        PlanRunner.Run(TraceTarget.Of(model), plan, limits ?? PlanLimits.Local, cancel);
    public static TraceResult Run(this HookedSaeTransformer model, TracePlan plan, PlanLimits? limits = null, CancellationToken cancel = default) =>
        PlanRunner.Run(TraceTarget.Of(model), plan, limits ?? PlanLimits.Local, cancel);

    static Tracer Start(TraceTarget target, Tensor? tokens, RemoteModel? remote)
    {
        var tracer = new Tracer(remote is null ? new LocalTraceBackend(target) : remote);
        if (tokens is not null) tracer.Invoke(tokens);
        return tracer;
    }

    static TraceResult Body(Tracer tracer, Action<Tracer> body)
    {
        body(tracer);
        return tracer.Run();
    }
}
