using SharpLens.Hooks;
using SharpLens.Models;

namespace SharpLens.Techniques.Patching;

/// <summary>How a sweep splits a component into cells.</summary>
public enum SweepBy
{
    /// <summary>The whole activation of each layer (one cell per layer).</summary>
    Layer,
    /// <summary>Each (layer, position) of a residual-shaped activation: result [n_layers, pos].</summary>
    Position,
    /// <summary>Each head: result [n_layers, n_heads].</summary>
    Head,
    /// <summary>Each (head, position) of q / k / v / z: result [n_layers, pos, n_heads].</summary>
    HeadPosition,
    /// <summary>Each MLP neuron (mlp post): result [n_layers, d_mlp].</summary>
    Neuron,
}

/// <summary>
/// One sweep: a component (a TransformerLens activation kind) at every layer, cut into cells along some of its
/// dimensions. Each cell patches the activation at those indices and everywhere along the other dimensions.
/// </summary>
internal sealed record SweepSpec(string Component, SweepBy By, int[] KeptDims, string[] DimNames)
{
    public static readonly string[] ResidualComponents = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out"];
    public static readonly string[] HeadComponents = ["z", "q", "k", "v", "pattern"];

    public string HookName(int layer) => ActivationCache.ActName(Component, layer);

    /// <summary>The component's hook at every layer, in order.</summary>
    public List<string> HookNames(int layers) => [.. Enumerable.Range(0, layers).Select(HookName)];

    /// <summary>
    /// The spec for a component and split (by default: by position for residual components, by head for head
    /// components, by neuron for MLP post), or an error that says which splits the component allows.
    /// </summary>
    public static SweepSpec For(HookedRootModule model, string component, SweepBy? split = null)
    {
        var by = split ?? (HeadComponents.Contains(component) ? SweepBy.Head : component == "post" ? SweepBy.Neuron : SweepBy.Position);
        bool residual = ResidualComponents.Contains(component), head = HeadComponents.Contains(component), neuron = component == "post";
        if (!residual && !head && !neuron)
            throw new PatchingException($"Unknown component '{component}'. Use one of {string.Join(", ", ResidualComponents.Concat(HeadComponents))} or post (MLP neurons).");
        string hook = ActivationCache.ActName(component, 0);
        if (!model.HookDict.ContainsKey(hook))
            throw new PatchingException(model.Config.AttnOnly
                ? $"{model.Config.ModelName} is attention-only: it has no {component} ({hook} does not exist; there resid_post = resid_pre + attn_out). Sweep resid_pre, resid_post, attn_out or the heads instead."
                : $"{model.Config.ModelName} has no hook {hook}, so {component} cannot be patched.");
        var (kept, names) = (component, by) switch
        {
            (_, SweepBy.Layer) => (Array.Empty<int>(), new[] { "layer" }),
            (_, SweepBy.Position) when residual || neuron => (new[] { 0 }, new[] { "layer", "pos" }),
            ("pattern", SweepBy.Head) => (new[] { 0 }, new[] { "layer", "head" }),
            (_, SweepBy.Head) when head => (new[] { 1 }, new[] { "layer", "head" }),
            (not "pattern", SweepBy.HeadPosition) when head => (new[] { 0, 1 }, new[] { "layer", "pos", "head" }),
            ("post", SweepBy.Neuron) => (new[] { 1 }, new[] { "layer", "neuron" }),
            _ => throw new PatchingException($"Component '{component}' cannot be swept by {by}: residual components (resid_*, attn_out, mlp_out) go by Position or Layer, " +
                 "z / q / k / v by Head or HeadPosition, pattern by Head, MLP post by Neuron."),
        };
        return new SweepSpec(component, by, kept, names);
    }
}
