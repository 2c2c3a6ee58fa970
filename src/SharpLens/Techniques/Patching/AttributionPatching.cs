using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// Attribution patching: the linear estimate of every activation patch at once,
/// (clean activation − corrupted activation) · ∂metric/∂activation at the corrupted run, summed over the dimensions a cell
/// covers and averaged over pairs, divided by (clean − corrupted) metric so it reads like <see cref="ActivationPatching"/>.
/// Two forward passes (clean, corrupted) and one backward pass, whatever the number of cells.
/// </summary>
public static class AttributionPatching
{
    /// <summary>The same components, splits and result shapes as <see cref="ActivationPatching.Sweep"/>.</summary>
    public static PatchingResult Sweep(HookedRootModule model, PromptPairs pairs, string component, SweepBy? by = null, PatchingOptions? options = null)
    {
        var spec = SweepSpec.For(model, component, by);
        using var scope = NewDisposeScope();
        var (products, clean, corrupted) = Products(model, pairs, spec.HookNames(model.Config.NLayers), options, scope);
        var perLayer = new List<Tensor>();
        foreach (var product in products) // [batch, rest...]
        {
            var cell = product;
            for (long d = product.dim() - 1; d >= 1; d--)
                if (!spec.KeptDims.Contains((int)d - 1)) cell = cell.sum(d); // ends [batch, kept...]
            // The metric is a mean over pairs, so its gradient already carries 1/batch: summing over pairs gives the mean effect.
            perLayer.Add(cell.sum(0L)); // 0L: a plain 0 would bind to the dtype overload and sum everything
        }
        var values = (stack(perLayer) / (clean - corrupted)).to(ScalarType.Float32).cpu(); // [n_layers, kept...]
        return new PatchingResult(component, spec.DimNames, values.DetachFromDisposeScope(), clean, corrupted, 2);
    }

    /// <summary>
    /// Attribution patching of every element of one hook, whatever it is — a model activation or, with an SAE spliced in,
    /// its features (<c>blocks.3.hook_resid_post.hook_sae_acts_post</c>): the estimated effect of patching each element
    /// alone, [pos, rest of the hook's shape] (e.g. [pos, d_sae]), normalised as <see cref="Sweep"/> is.
    /// </summary>
    public static PatchingResult AtHook(HookedRootModule model, PromptPairs pairs, string hookName, PatchingOptions? options = null)
    {
        model.GetHookPoint(hookName); // a misspelt name fails here, with the closest names
        using var scope = NewDisposeScope();
        var (products, clean, corrupted) = Products(model, pairs, [hookName], options, scope);
        var values = (products[0].sum(0L) / (clean - corrupted)).to(ScalarType.Float32).cpu(); // [pos, rest...]
        string[] dims = ["pos", .. Enumerable.Range(1, (int)values.dim() - 1).Select(d => $"dim{d}")];
        return new PatchingResult(hookName, dims, values.DetachFromDisposeScope(), clean, corrupted, 2);
    }

    /// <summary>(clean − corrupted activation) · ∂metric/∂activation at the corrupted run, per hook: [batch, ...] each.</summary>
    static (List<Tensor> Products, double Clean, double Corrupted) Products(HookedRootModule model, PromptPairs pairs, List<string> hooks,
        PatchingOptions? options, DisposeScope scope)
    {
        options ??= new PatchingOptions();
        using var run = new CleanRun(model, pairs, hooks, options.Metric);
        var (onDevice, cleanCache, clean) = (run.Pairs, run.Cache, run.Metric);
        using (enable_grad())
        {
            var corruptedActs = new Dictionary<string, Tensor>();
            // A model with frozen weights builds no graph: start one at the embedding so the activations still get gradients.
            HookFunction startGraph = (activation, _) => activation.requires_grad ? null : activation.detach().requires_grad_(true);
            // Kept past the forward pass's own dispose scope; the autograd graph holds its own references.
            HookFunction record = (activation, hook) => { corruptedActs[hook.Name] = activation.DetachFromDisposeScope(); return null; };
            Tensor corruptedLogits;
            using (model.Hooks([("hook_embed", startGraph), .. hooks.Select(h => (h, record))]))
                corruptedLogits = model.Run(onDevice.Corrupted, onDevice.AttentionMask);
            var metric = PatchingMetrics.PerPrompt(options.Metric, corruptedLogits, onDevice).mean();
            double corrupted = metric.item<float>();
            PatchingMetrics.CheckSpan(clean, corrupted);

            foreach (var act in corruptedActs.Values) scope.Attach(act);
            var inputs = hooks.Select(h => corruptedActs[h]).ToList();
            // Gradients with respect to the activations only: the weights' .grad stay untouched.
            var grads = UncaughtNativeCalls.Grad([metric], inputs);
            var products = hooks.Select((h, l) => (cleanCache[h] - inputs[l].detach()) * grads[l]!).ToList(); // [batch, rest...] each
            return (products, clean, corrupted);
        }
    }
}
