using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>Text continuation: sample one token at a time, each step computing only the new position (key/value cache).</summary>
public partial class HookedTransformer
{
    /// <summary>
    /// Appends <paramref name="maxNewTokens"/> tokens to each sequence and returns [batch, pos + new]. Temperature 0
    /// is greedy (argmax); otherwise logits / temperature are sampled, optionally limited to the <paramref name="topK"/>
    /// most likely tokens and to the smallest set whose probability reaches <paramref name="topP"/>. Hooks attached to
    /// the model apply at every step, to the positions computed in that step: the whole prompt first, then each new
    /// token alone (as in TransformerLens). With <paramref name="useKeyValueCache"/> the keys and values of earlier
    /// positions are kept, so a step costs one position; without it every step recomputes the whole sequence. Past
    /// n_ctx, the model sees the last n_ctx tokens, recomputed each step.
    /// </summary>
    /// <param name="tokens">[batch, pos] or [pos] prompt token ids (unpadded)</param>
    /// <param name="seed">seeds the sampling, so a run is reproducible</param>
    public Tensor Generate(Tensor tokens, int maxNewTokens, double temperature = 1.0, int? topK = null, double? topP = null, long seed = 0,
        bool useKeyValueCache = true)
    {
        if (maxNewTokens < 0) throw new ModelInputException(nameof(maxNewTokens), $"maxNewTokens must not be negative, got {maxNewTokens}.");
        if (temperature < 0) throw new ModelInputException(nameof(temperature), $"temperature must be ≥ 0 (0 = greedy), got {temperature}.");
        if (topK is <= 0) throw new ModelInputException(nameof(topK), $"topK must be positive, got {topK}.");
        if (topP is <= 0 or > 1) throw new ModelInputException(nameof(topP), $"topP must be in (0, 1], got {topP}.");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var sequence = tokens.dim() == 1 ? tokens.unsqueeze(0) : tokens; // [batch, pos]
        sequence = sequence.to(ScalarType.Int64).to(embed.W_E.device);
        using var generator = new Generator((ulong)seed, embed.W_E.device);
        using var cache = useKeyValueCache ? NewKeyValueCache() : null;
        for (int step = 0; step < maxNewTokens; step++)
        {
            using var stepScope = NewDisposeScope();
            long pos = sequence.shape[1];
            Tensor logits;
            if (cache is not null && pos <= Config.NCtx)
                logits = Run(sequence[.., (int)cache.Length..], cache)[.., -1].to(ScalarType.Float32); // [batch, d_vocab]
            else
            {
                var window = pos > Config.NCtx ? sequence[.., (int)(pos - Config.NCtx)..] : sequence;
                logits = Run(window)[.., -1].to(ScalarType.Float32); // [batch, d_vocab]
            }
            var next = temperature == 0 ? logits.argmax(-1, keepdim: true) : Sample(logits / temperature, topK, topP, generator); // [batch, 1]
            sequence = cat([sequence, next], 1).MoveToOuterDisposeScope(); // [batch, pos + 1]
        }
        return sequence.MoveToOuterDisposeScope();
    }

    internal static Tensor Sample(Tensor logits, int? topK, double? topP, Generator generator) // logits: [batch, d_vocab]
    {
        if (topK is int k) logits = Sampling.TopK(logits, k);
        if (topP is double p) logits = Sampling.TopP(logits, p);
        return multinomial(logits.softmax(-1), 1, generator: generator); // [batch, 1]
    }
}
