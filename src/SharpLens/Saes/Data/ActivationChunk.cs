using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// Activations of the kept token positions of one model call: <see cref="Input"/> [n, d_in] and, for a transcoder,
/// the paired <see cref="Output"/> [n, d_out] at the same positions. Owns its tensors.
/// </summary>
public sealed class ActivationChunk(Tensor input, Tensor? output = null) : IDisposable
{
    // Out of any dispose scope that was open when they were made: the chunk decides when they are freed.
    public Tensor Input { get; } = input.DetachFromDisposeScope();
    public Tensor? Output { get; } = output?.DetachFromDisposeScope();
    public long Rows => Input.shape[0];

    public void Dispose()
    {
        Input.Dispose();
        Output?.Dispose();
    }
}

/// <summary>Chunks of activations from a model, one per token batch.</summary>
public static class ActivationChunks
{
    /// <summary>
    /// Runs <paramref name="reader"/> on each token batch [batch, pos] and keeps the positions that carry text: the first
    /// position when <paramref name="dropFirstPosition"/> (the prepended BOS), and every position whose token is in
    /// <paramref name="excludedTokenIds"/> (BOS used as a separator, padding), are dropped, as SAELens excludes special tokens.
    /// </summary>
    public static IEnumerable<ActivationChunk> FromModel(ActivationReader reader, IEnumerable<Tensor> tokenBatches,
        IReadOnlyCollection<int>? excludedTokenIds = null, bool dropFirstPosition = true)
    {
        // The scope lives inside ReadChunk, not across the yield, so the caller's scopes never interleave with it.
        foreach (var tokens in tokenBatches) yield return ReadChunk(reader, tokens, excludedTokenIds ?? [], dropFirstPosition);
    }

    static ActivationChunk ReadChunk(ActivationReader reader, Tensor tokens, IReadOnlyCollection<int> excludedTokenIds, bool dropFirstPosition)
    {
        using var scope = torch.NewDisposeScope();
        var acts = reader(tokens);
        try
        {
            if (acts.Length is not (1 or 2))
                throw new ArgumentException($"The activation reader returned {acts.Length} activations; an SAE store takes one (input) or two (input, output).", nameof(reader));
            foreach (var a in acts)
                if (a.dim() != 3 || a.shape[0] != tokens.shape[0] || a.shape[1] != tokens.shape[1])
                    throw new ArgumentException($"The activation reader returned {ShapeText.Of(a.shape)} for tokens {ShapeText.Of(tokens.shape)}; it must return [batch, pos, d].", nameof(reader));
            var keep = torch.ones(tokens.shape, ScalarType.Bool); // [batch, pos]
            if (dropFirstPosition) keep[.., 0] = false;
            var ids = tokens.cpu();
            foreach (int id in excludedTokenIds) keep &= ids != id;
            var mask = keep.to(acts[0].device);
            var input = acts[0][mask]; // [n, d_in]
            var output = acts.Length == 2 ? acts[1][mask] : null; // [n, d_out]
            return new ActivationChunk(input.MoveToOuterDisposeScope(), output?.MoveToOuterDisposeScope());
        }
        finally
        {
            foreach (var a in acts) a.Dispose();
        }
    }
}
