using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Saes.Data;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>
/// Activations of several models at one hook on the same tokens: each token batch [batch, pos] runs through every
/// model, and their activations are laid side by side, [batch, pos, M · d] (model 0's d first), so an
/// <see cref="ActivationStore"/> keeps the models' rows paired (same token, same position) while it shuffles, with its
/// memory bound. <see cref="AsCrosscoderInput"/> views a stored batch as the crosscoder's [n, M, d].
/// </summary>
public static class PairedActivations
{
    /// <summary>
    /// A reader over <paramref name="models"/> at <paramref name="hook"/> after <see cref="Check"/>; each forward pass stops at the hook.
    /// </summary>
    public static ActivationReader Reader(IReadOnlyList<HookedTransformer> models, string hook, IReadOnlyList<string>? names = null)
    {
        int d = Check(models, hook, names);
        var readers = models.Select(m => ModelActivations.Reader(m, hook)).ToArray();
        return tokens =>
        {
            using var scope = torch.NewDisposeScope();
            var acts = readers.Select(r => r(tokens)[0]).ToArray(); // M × [batch, pos, d]
            foreach (var a in acts)
                if (a.shape[^1] != d) throw new DiffingException($"{hook} gave width {a.shape[^1]} where the first batch gave {d}.");
            return [torch.cat(acts, -1).MoveToOuterDisposeScope()]; // [batch, pos, M · d]
        };
    }

    /// <summary>A stored batch [n, M · d] viewed as [n, M, d].</summary>
    public static Tensor AsCrosscoderInput(Tensor paired, int nModels) =>
        paired.view(paired.shape[0], nModels, paired.shape[1] / nModels); // [n, M, d]

    /// <summary>
    /// Checks that the models can be diffed at <paramref name="hook"/>: each has the hook, they share a tokenizer (same
    /// vocabulary size, and the same ids for a probe text when they carry tokenizers), and the hook has the same width in
    /// each. Returns that width (d, the activation's trailing dimensions flattened).
    /// </summary>
    public static int Check(IReadOnlyList<HookedTransformer> models, string hook, IReadOnlyList<string>? names = null)
    {
        if (models.Count < 2) throw new DiffingException("Diffing needs at least two models (a base and a fine-tune).");
        string Name(int i) => names is not null && i < names.Count ? names[i] : i == 0 ? "the base model" : $"model {i}";
        for (int i = 0; i < models.Count; i++)
            if (!models[i].HookDict.ContainsKey(hook))
                throw new DiffingException($"{Name(i)} has no hook '{hook}' ({new HookNotFoundException(hook, models[i].HookDict.Keys).Message}) " +
                                           $"while {Name(i == 0 ? 1 : 0)} {(models[i == 0 ? 1 : 0].HookDict.ContainsKey(hook) ? "has it" : "lacks it too")}; diff at a hook every model has.");
        for (int i = 1; i < models.Count; i++)
        {
            var (a, b) = (models[0], models[i]);
            if (a.Config.DVocab != b.Config.DVocab)
                throw new DiffingException($"{Name(0)} reads {a.Config.DVocab} token ids but {Name(i)} reads {b.Config.DVocab}: a crosscoder pairs the models' activations on the same tokens, so they must share one tokenizer.");
            if (TokenizerOf(a) is { } ta && TokenizerOf(b) is { } tb)
            {
                const string probe = "The quick brown fox, 1234 times: naïve café!";
                var (ia, ib) = (ta.Encode(probe), tb.Encode(probe));
                if (ta.VocabSize != tb.VocabSize || !ia.SequenceEqual(ib))
                    throw new DiffingException($"{Name(0)}'s tokenizer ({ta.Name}, {ta.VocabSize} ids) and {Name(i)}'s ({tb.Name}, {tb.VocabSize} ids) disagree " +
                        $"(\"{probe}\" → [{string.Join(", ", ia.Take(8))}…] vs [{string.Join(", ", ib.Take(8))}…]); diff models that share a tokenizer.");
            }
        }
        var widths = models.Select(m => WidthAt(m, hook)).ToArray();
        for (int i = 1; i < models.Count; i++)
            if (widths[i] != widths[0])
                throw new DiffingException($"{hook} is {widths[0]} wide in {Name(0)} but {widths[i]} wide in {Name(i)} (d_model {models[0].Config.DModel} vs {models[i].Config.DModel}); a crosscoder reads the same width from every model.");
        return (int)widths[0];
    }

    static ModelTokenizer? TokenizerOf(HookedTransformer model) =>
        model.TokenizerIfSet ?? (model.Config.TokenizerName is not null ? model.Tokenizer : null);

    /// <summary>The width of <paramref name="hook"/> (trailing dimensions flattened), read from one two-token forward pass.</summary>
    static long WidthAt(HookedTransformer model, string hook)
    {
        using var scope = torch.NewDisposeScope();
        var tokens = torch.zeros(1, Math.Min(2, model.Config.NCtx), ScalarType.Int64);
        return ModelActivations.Reader(model, hook)(tokens)[0].shape[^1];
    }
}
