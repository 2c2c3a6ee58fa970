using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>Where a latent's decoder lives, by its relative decoder norm (thresholds of the diffing-toolkit: 0.1 either side).</summary>
public enum LatentKind { Shared, FinetuneOnly, BaseOnly, Other, Dead }

/// <summary>
/// Per-latent decoder norms and what they say about a crosscoder over a base (model 0) and a fine-tune (model
/// <see cref="FinetunedIndex"/>, the last by default).
/// <para><b>Convention</b> (Anthropic's and Kissane's): relative norm r_i = ‖d_i^ft‖ / (‖d_i^base‖ + ‖d_i^ft‖) ∈ [0, 1];
/// <b>1 = fine-tune-only</b>, 0 = base-only, ½ = shared. (The diffing-toolkit's dec_norm_diff runs the other way, 0 = fine-tune-only;
/// Minder et al.'s Δ_norm = ½((‖d^ft‖ − ‖d^base‖)/max + 1) agrees with this one at the ends and is given as <see cref="NormDifference"/>.)</para>
/// Tags: fine-tune-only r &gt; 0.9, base-only r &lt; 0.1, shared |r − ½| &lt; 0.1, else other; dead when the latent never fired
/// (only when firing counts are given).
/// </summary>
public sealed record DecoderNorms(float[] Base, float[] Finetuned, float[] Relative, float[] NormDifference, float[] Cosine,
    LatentKind[] Kinds, int FinetunedIndex)
{
    public int Latents => Relative.Length;

    public static DecoderNorms Of(CrossCoder crosscoder, int? finetunedIndex = null, long[]? firingCounts = null)
    {
        int ft = finetunedIndex ?? crosscoder.NModels - 1;
        if (ft <= 0 || ft >= crosscoder.NModels)
            throw new ArgumentOutOfRangeException(nameof(finetunedIndex), ft, $"The fine-tune is one of models 1 … {crosscoder.NModels - 1} (model 0 is the base).");
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var baseDec = crosscoder.W_dec[0]; // [F, d]
        var ftDec = crosscoder.W_dec[ft]; // [F, d]
        var nb = baseDec.norm(1); // [F]
        var nf = ftDec.norm(1); // [F]
        var relative = nf / (nb + nf).clamp_min(1e-12); // [F]
        var normDiff = ((nf - nb) / torch.maximum(nb, nf).clamp_min(1e-12) + 1) / 2; // [F]
        var cosine = (baseDec * ftDec).sum(1) / (nb * nf).clamp_min(1e-12); // [F]
        float[] r = relative.data<float>().ToArray();
        var kinds = r.Select((v, i) => firingCounts is not null && firingCounts[i] == 0 ? LatentKind.Dead
            : v > 0.9f ? LatentKind.FinetuneOnly : v < 0.1f ? LatentKind.BaseOnly : Math.Abs(v - 0.5f) < 0.1f ? LatentKind.Shared : LatentKind.Other).ToArray();
        return new DecoderNorms(nb.data<float>().ToArray(), nf.data<float>().ToArray(), r, normDiff.data<float>().ToArray(),
            cosine.data<float>().ToArray(), kinds, ft);
    }

    /// <summary>Latents in order of decreasing relative norm (most fine-tune-only first), leaving out dead ones.</summary>
    public int[] MostFinetuneOnly(int count) => [.. Enumerable.Range(0, Latents).Where(i => Kinds[i] != LatentKind.Dead)
        .OrderByDescending(i => Relative[i]).ThenBy(i => i).Take(count)];

    public int Count(LatentKind kind) => Kinds.Count(k => k == kind);
}
