using System.Runtime.CompilerServices;
using SharpLens.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// The order in which a model's forward pass reaches its hook points, found by watching it: one forward of a single
/// token with a recorder on every hook point. Creation order is not enough (attention creates hook_k before hook_q,
/// hook_z before hook_pattern; an SAE's hooks fire inside the hook it is spliced at). Measured once per model and set
/// of hook names, then cached; "output" comes last.
/// </summary>
static class HookOrder
{
    sealed record Entry(string Fingerprint, IReadOnlyList<string> Order, IReadOnlyDictionary<string, int> Rank);

    static readonly ConditionalWeakTable<object, Entry> Cache = [];

    public static IReadOnlyList<string> Of(TraceTarget target) => Get(target).Order;

    /// <summary>Position of each hook in forward order ("output" last).</summary>
    public static IReadOnlyDictionary<string, int> Ranks(TraceTarget target) => Get(target).Rank;

    static Entry Get(TraceTarget target)
    {
        var dict = target.HookDict;
        string fingerprint = string.Join('\n', dict.Keys);
        lock (Cache)
        {
            if (Cache.TryGetValue(dict, out var cached) && cached.Fingerprint == fingerprint) return cached;
            var entry = Measure(target, fingerprint);
            Cache.AddOrUpdate(dict, entry);
            return entry;
        }
    }

    static Entry Measure(TraceTarget target, string fingerprint)
    {
        var seen = new List<string>();
        var handles = new List<IDisposable>();
        HookFunction record = (_, hook) => { if (!seen.Contains(hook.Name)) seen.Add(hook.Name); return null; };
        try
        {
            foreach (var point in target.HookDict.Values) handles.Add(point.Add(record, HookDirection.Forward));
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            target.Forward(zeros(1, 1, dtype: ScalarType.Int64, device: target.Device), null);
        }
        finally
        {
            foreach (var h in handles) h.Dispose();
        }
        // Hook points the forward never reached (none in SharpLens's models) keep creation order, after the rest.
        var order = seen.Concat(target.HookDict.Keys.Where(k => !seen.Contains(k))).Append(TracePlan.OutputHook).ToList();
        return new Entry(fingerprint, order, order.Select((name, i) => (name, i)).ToDictionary(p => p.name, p => p.i));
    }
}
