using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>
/// A <see cref="HookedTransformer"/> with SAEs spliced in, like SAELens's HookedSAETransformer (a subclass): it is the
/// same model — the same modules, weights and hook points as the one it is built on — so every technique takes it
/// directly. The forward pass runs
/// through each SAE's output at its hook, and the SAE's own hook points join the model's own hook dictionary under
/// names "&lt;hook&gt;.hook_sae_acts_post" etc. while spliced, so the model's RunWithCache records features and
/// RunWithHooks, steering and every other tool that finds hooks by name patches, ablates or steers them.
/// </summary>
/// <remarks>
/// An SAE replaces the activation at its hook with its reconstruction (plus x − x̂ when it uses the error term, which
/// leaves everything downstream exact until a feature is changed). A transcoder reads its input hook and replaces its
/// output hook (<see cref="SaeMetadata.HookNameOut"/>); its hook points are named after the input hook.
/// </remarks>
public sealed class HookedSaeTransformer(HookedTransformer model) : HookedTransformer(model)
{
    readonly List<Splice> _splices = [];

    /// <summary>The model this one was built on; it shares everything, so while SAEs are spliced it runs through them too.</summary>
    public HookedTransformer Model { get; } = model;

    /// <summary>The SAEs spliced in now, by the hook they read.</summary>
    public IReadOnlyDictionary<string, Sae> Saes => _splices.ToDictionary(s => s.HookName, s => s.Sae);

    /// <summary>
    /// Splices an SAE in at <paramref name="hookName"/> (default: the hook in its metadata) until the handle is disposed
    /// or <see cref="ResetSaes"/> is called.
    /// </summary>
    public IDisposable AddSae(Sae sae, string? hookName = null, bool useErrorTerm = false)
    {
        hookName ??= sae.Config.Metadata.HookName
            ?? throw new ArgumentException("The SAE's metadata names no hook; say where to splice it (hookName), e.g. 'blocks.0.hook_resid_pre'.", nameof(hookName));
        GetHookPoint(hookName);
        if (_splices.Any(s => s.HookName == hookName))
            throw new SharpLensArgumentException(nameof(hookName), $"An SAE is already spliced at '{hookName}'; remove it (dispose its handle or ResetSaes) first.");
        sae.UseErrorTerm = useErrorTerm;
        sae.NameHooks(hookName);

        var splice = new Splice(this, sae, hookName);
        splice.Handles.Add(AdoptHookPoints([.. sae.HookPoints]));
        if (sae.Config.IsTranscoder)
        {
            string outName = sae.Config.Metadata.HookNameOut
                ?? throw new ArgumentException("A transcoder needs the hook it writes to: set Metadata.HookNameOut (SAELens's hook_name_out).", nameof(sae));
            GetHookPoint(outName);
            splice.Handles.Add(AddHook(hookName, (x, _) => { splice.Capture(x); return null; }));
            splice.Handles.Add(AddHook(outName, (y, _) =>
            {
                using var x = splice.TakeCaptured(outName);
                return sae.Forward(x, target: y);
            }));
        }
        else splice.Handles.Add(AddHook(hookName, (x, _) => sae.Forward(x)));
        _splices.Add(splice);
        return splice;
    }

    /// <summary>Takes every SAE out; the model runs as it did before.</summary>
    public void ResetSaes()
    {
        foreach (var splice in _splices.ToList()) splice.Dispose();
    }

    /// <summary>Takes the SAEs out; the shared modules belong to <see cref="Model"/> and are left to it.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing) ResetSaes();
    }

    sealed class Splice(HookedSaeTransformer owner, Sae sae, string hookName) : IDisposable
    {
        public Sae Sae { get; } = sae;
        public string HookName { get; } = hookName;
        public List<IDisposable> Handles { get; } = [];
        Tensor? _captured;

        // The input hook's activation may belong to an earlier block's dispose scope, so it is held here until used.
        public void Capture(Tensor x)
        {
            _captured?.Dispose();
            _captured = x.alias().DetachFromDisposeScope();
        }

        public Tensor TakeCaptured(string outName)
        {
            var x = _captured ?? throw new SharpLensArgumentException(nameof(outName), $"The transcoder at '{HookName}' writes to '{outName}', which the forward pass reached before '{HookName}'; its output hook must come after its input hook.");
            _captured = null;
            return x;
        }

        public void Dispose()
        {
            foreach (var h in Handles) h.Dispose();
            Handles.Clear();
            _captured?.Dispose();
            _captured = null;
            owner._splices.Remove(this);
        }
    }
}
