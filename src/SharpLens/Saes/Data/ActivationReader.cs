using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// The model side of an activation store: token ids [batch, pos] → one activation [batch, pos, d] per hook asked for
/// (one for an SAE; two, input and output, for a transcoder). Any model plugs in with one such function:
/// <see cref="ModelActivations.Reader"/> for a <see cref="HookedTransformer"/>; an encoder needs a lambda over its own cache.
/// The returned tensors belong to the caller.
/// </summary>
public delegate Tensor[] ActivationReader(Tensor tokens);

/// <summary>Activation readers for <see cref="HookedTransformer"/>.</summary>
public static class ModelActivations
{
    /// <summary>
    /// Reads the activations at <paramref name="hookNames"/> with gradients off, trailing dimensions flattened
    /// (<c>hook_z</c> [batch, pos, head, d_head] → [batch, pos, head·d_head]). The forward pass stops at the last
    /// of these hooks: later blocks and the unembedding never run.
    /// </summary>
    public static ActivationReader Reader(HookedRootModule model, params string[] hookNames)
    {
        if (hookNames.Length == 0) throw new ArgumentException("Name at least one hook to read.", nameof(hookNames));
        foreach (string name in hookNames) model.GetHookPoint(name);
        return tokens => Capture(hookNames, model.HookDict.Keys, hooks =>
        {
            using var _ = torch.no_grad();
            model.RunWithHooks(tokens, hooks);
        });
    }

    /// <summary>
    /// Runs <paramref name="runWithHooks"/> with a capturing hook on each of <paramref name="hookNames"/> and returns what
    /// they saw, trailing dimensions flattened to [batch, pos, d]; the forward pass is cut short (an exception the
    /// hook throws and this catches) once every activation is in hand. Shared by every model's reader.
    /// </summary>
    internal static Tensor[] Capture(string[] hookNames, IEnumerable<string> knownHooks, Action<IEnumerable<(string Name, HookFunction Hook)>> runWithHooks)
    {
        var captured = new Tensor?[hookNames.Length];
        int remaining = hookNames.Length;
        HookFunction capture = (activation, hook) =>
        {
            for (int i = 0; i < hookNames.Length; i++)
                if (hookNames[i] == hook.Name && captured[i] is null)
                {
                    var kept = activation.dim() > 3 ? activation.flatten(2) : activation; // [batch, pos, d]
                    captured[i] = kept.detach().clone().DetachFromDisposeScope();
                    remaining--;
                }
            if (remaining == 0) throw new StopForward();
            return null;
        };
        try { runWithHooks(hookNames.Distinct().Select(n => (n, capture))); }
        catch (StopForward) { }
        catch
        {
            foreach (var t in captured) t?.Dispose();
            throw;
        }
        return [.. captured.Select((t, i) => t ?? throw new HookNotFoundException(hookNames[i], knownHooks))];
    }

    /// <summary>Thrown by the capturing hook once every activation is in hand, to skip the rest of the forward pass.</summary>
    sealed class StopForward : Exception;
}
