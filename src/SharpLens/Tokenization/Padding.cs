using static TorchSharp.torch;

namespace SharpLens.Tokenization;

/// <summary>Which end of a shorter sequence the padding goes on.</summary>
public enum PaddingSide
{
    /// <summary>Real tokens first, then padding: positions are the same as alone.</summary>
    Right,
    /// <summary>Padding first, so every sequence ends at the last position (handy for next-token logits).</summary>
    Left,
}

/// <summary>Stacks token sequences of different lengths into one padded batch and its attention mask.</summary>
public static class TokenBatch
{
    /// <returns>Tokens [batch, max_pos] int64, and AttentionMask [batch, max_pos] int64: 1 for real tokens, 0 for padding.</returns>
    public static (Tensor Tokens, Tensor AttentionMask) Pad(IReadOnlyList<IReadOnlyList<int>> sequences, int padTokenId,
        PaddingSide side = PaddingSide.Right)
    {
        if (sequences.Count == 0) throw new ArgumentException("Give at least one sequence to pad.", nameof(sequences));
        int maxLength = sequences.Max(s => s.Count);
        if (maxLength == 0) throw new ArgumentException("Every sequence is empty: there is nothing to run.", nameof(sequences));

        var tokens = new long[sequences.Count, maxLength];
        var mask = new long[sequences.Count, maxLength];
        for (int b = 0; b < sequences.Count; b++)
        {
            var seq = sequences[b];
            int start = side == PaddingSide.Left ? maxLength - seq.Count : 0;
            for (int p = 0; p < maxLength; p++) tokens[b, p] = padTokenId;
            for (int i = 0; i < seq.Count; i++)
            {
                tokens[b, start + i] = seq[i];
                mask[b, start + i] = 1;
            }
        }
        return (tensor(tokens), tensor(mask));
    }
}
