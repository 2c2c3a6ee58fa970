using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// Where a path ends: a head's query, key or value input (Input = "q", "k", "v", with a Head), or a whole residual
/// activation of a layer (Input = "resid_pre", "resid_mid", "resid_post", Head = null).
/// </summary>
public readonly record struct PathReceiver(int Layer, string Input, int? Head = null)
{
    public override string ToString() => Head is { } h ? $"{Layer}.{h}.{Input}" : $"{Input} {Layer}";
}

/// <summary>
/// Path patching as in Wang et al. (IOI), in the denoising direction: how much of the clean behaviour comes back when the
/// clean output of the sender heads reaches the receivers only through the direct path (the residual stream), with every
/// other head frozen at its corrupted output.
/// <list type="number">
/// <item>Run clean and corrupted, caching every head's z.</item>
/// <item>Run corrupted with the senders' z set to clean and every other head's z set to corrupted (MLPs recompute); record
/// the receivers' inputs.</item>
/// <item>Run corrupted with only the receivers' inputs replaced by those recorded; measure the metric, normalised
/// (0 = corrupted, 1 = clean).</item>
/// </list>
/// </summary>
public static class PathPatching
{
    public static double Run(HookedRootModule model, PromptPairs pairs, IReadOnlyCollection<HeadId> senders,
        IReadOnlyCollection<PathReceiver> receivers, PatchingMetric metric = PatchingMetric.LogitDifference)
    {
        if (senders.Count == 0 || receivers.Count == 0) throw new ArgumentException("Give at least one sender head and one receiver.", nameof(senders));
        var receiverHooks = receivers.Select(r => ReceiverHook(model, r, senders)).Distinct().ToList();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var device = model.Device;
        var mask = pairs.AttentionMask?.to(device);
        var clean = pairs.Clean.to(device);
        var corrupted = pairs.Corrupted.to(device);
        var zHooks = Enumerable.Range(0, model.Config.NLayers).Select(l => ActivationCache.ActName("z", l)).ToList();

        var (cleanLogits, cleanCache) = model.RunWithCache(clean, zHooks, mask);
        var (corruptedLogits, corruptedCache) = model.RunWithCache(corrupted, zHooks, mask);
        using (cleanCache)
        using (corruptedCache)
        {
            double cleanMetric = PatchingMetrics.PerPrompt(metric, cleanLogits, pairs).mean().item<float>();
            double corruptedMetric = PatchingMetrics.PerPrompt(metric, corruptedLogits, pairs).mean().item<float>();

            // Step 2: senders clean, every other head frozen at corrupted; record what the receivers would read.
            var freeze = zHooks.Select((name, layer) => (name, (HookFunction)((_, _) =>
            {
                var isSender = tensor(Enumerable.Range(0, model.Config.NHeads).Select(h => senders.Contains(new HeadId(layer, h))).ToArray())
                    .to(device).view(1, 1, -1, 1); // [1, 1, head, 1]
                return where(isSender, cleanCache[name], corruptedCache[name]);
            }))).ToList();
            var recorded = new Dictionary<string, Tensor>();
            HookFunction record = (activation, hook) => { recorded[hook.Name] = activation.clone().DetachFromDisposeScope(); return null; };
            using (model.Hooks([.. freeze, .. receiverHooks.Select(h => (h, record))]))
                model.Run(corrupted, mask);
            foreach (var kept in recorded.Values) scope.Attach(kept);

            // Step 3: only the receivers read the recorded inputs.
            var patch = receiverHooks.Select(name => (name, (HookFunction)((activation, hook) =>
            {
                var mine = receivers.Where(r => ReceiverHook(model, r, senders) == name).ToList();
                if (mine.Any(r => r.Head is null)) return recorded[name];
                var heads = tensor(Enumerable.Range(0, model.Config.NHeads).Select(h => mine.Any(r => r.Head == h)).ToArray())
                    .to(device).view(1, 1, -1, 1); // [1, 1, head, 1]
                return where(heads, recorded[name], activation);
            }))).ToList();
            var logits = model.RunWithHooks(corrupted, patch, mask);
            double value = PatchingMetrics.PerPrompt(metric, logits, pairs).mean().item<float>();
            return PatchingMetrics.Normalise(value, cleanMetric, corruptedMetric);
        }
    }

    /// <summary>Path patching with each head in turn as the only sender: [n_layers, n_heads] (heads at or after the receivers' layer give 0).</summary>
    public static float[,] SweepSenders(HookedRootModule model, PromptPairs pairs, IReadOnlyCollection<PathReceiver> receivers,
        PatchingMetric metric = PatchingMetric.LogitDifference)
    {
        int layers = model.Config.NLayers, heads = model.Config.NHeads, firstReceiver = receivers.Min(r => r.Layer);
        var result = new float[layers, heads];
        for (int l = 0; l < Math.Min(layers, firstReceiver); l++)
            for (int h = 0; h < heads; h++)
                result[l, h] = (float)Run(model, pairs, [new HeadId(l, h)], receivers, metric);
        return result;
    }

    static string ReceiverHook(HookedRootModule model, PathReceiver receiver, IReadOnlyCollection<HeadId> senders)
    {
        bool headInput = receiver.Input is "q" or "k" or "v";
        if (!headInput && receiver.Input is not ("resid_pre" or "resid_mid" or "resid_post"))
            throw new ArgumentException($"Receiver input '{receiver.Input}' is unknown: use q, k or v (with a head) or resid_pre, resid_mid, resid_post.", nameof(receiver));
        if (headInput != receiver.Head is not null)
            throw new ArgumentException($"Receiver {receiver}: q / k / v inputs need a head, residual inputs take none.", nameof(receiver));
        if (receiver.Layer < 0 || receiver.Layer >= model.Config.NLayers)
            throw new ArgumentException($"Receiver layer {receiver.Layer} is outside 0…{model.Config.NLayers - 1}.", nameof(receiver));
        if (senders.Any(s => s.Layer >= receiver.Layer && !(s.Layer == receiver.Layer && receiver.Input is "resid_mid" or "resid_post")))
            throw new ArgumentException($"Every sender must come before receiver {receiver} (senders: {string.Join(", ", senders)}).", nameof(senders));
        string name = ActivationCache.ActName(receiver.Input, receiver.Layer);
        if (!model.HookDict.ContainsKey(name))
            throw new PatchingException($"{model.Config.ModelName} has no {name} (an attention-only model has no resid_mid); choose another receiver.");
        return name;
    }
}
