using SharpLens.Hooks;
using SharpLens.Models.Encoder;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// The activation reader for a <see cref="HookedEncoder"/> (BERT, all-MiniLM-L6-v2). Rows come padded on the right with
/// [PAD]; the reader derives the attention mask from the pad id, so every real token's activation is the one it has in
/// the unpadded sequence. Padding rows are returned too (the reader keeps [batch, pos]); leave them out of the store by
/// passing <see cref="SpecialTokenIds"/> as its excluded ids. [CLS] and [SEP] are left out as well: like GPT-2's BOS
/// they are attention sinks whose residual norms are far from a word's, and they carry no word to interpret.
/// </summary>
public static class EncoderActivations
{
    /// <summary>Reads the activations at <paramref name="hookNames"/> with gradients off; the forward stops after the last of them.</summary>
    /// <param name="padTokenId">The id that marks padding (the model's tokenizer's [PAD] when null, else 0 as in BERT's vocabulary).</param>
    public static ActivationReader Reader(HookedEncoder model, int? padTokenId = null, params string[] hookNames)
    {
        if (hookNames.Length == 0) throw new ArgumentException("Name at least one hook to read.", nameof(hookNames));
        foreach (string name in hookNames) model.GetHookPoint(name);
        int pad = padTokenId ?? model.Tokenizer?.PadTokenId ?? 0;
        return tokens => ModelActivations.Capture(hookNames, model.HookDict.Keys, hooks =>
        {
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var mask = tokens.ne(pad).to(ScalarType.Int64); // [batch, pos]
            model.RunWithHooks(tokens, hooks, mask);
        });
    }

    /// <summary>[CLS], [SEP] and [PAD]: the ids an SAE store and a dashboard leave out for a BERT encoder.</summary>
    public static IReadOnlyList<int> SpecialTokenIds(BertWordPieceTokenizer tokenizer) =>
        [tokenizer.ClsTokenId, tokenizer.SepTokenId, tokenizer.PadTokenId];
}
