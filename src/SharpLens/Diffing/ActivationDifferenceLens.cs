using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Saes.Data;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>A token a readout ranks, with its probability.</summary>
public sealed record ReadoutToken(int Token, string Text, double Probability);

/// <summary>The patchscope readout at one scale: the next-token distribution's top tokens.</summary>
public sealed record PatchscopeReadout(double Scale, IReadOnlyList<ReadoutToken> Top);

/// <summary>
/// The activation difference lens's statistics at one hook: per position j of the first <see cref="Positions"/>, the mean
/// over samples of δ_j = h^ft_j − h^base_j [P, d], and of each model's own activation; the fine-tune's mean activation norm
/// at the hook (over positions ≥ 1), which steering matches.
/// </summary>
public sealed class AdlStatistics(string hook, long samples, Tensor meanDifference, Tensor baseMean, Tensor finetunedMean, double finetunedNorm) : IDisposable
{
    public string Hook { get; } = hook;
    public long Samples { get; } = samples;
    public Tensor MeanDifference { get; } = meanDifference; // [P, d]
    public Tensor BaseMean { get; } = baseMean; // [P, d]
    public Tensor FinetunedMean { get; } = finetunedMean; // [P, d]
    public double FinetunedNorm { get; } = finetunedNorm;
    public int Positions => (int)MeanDifference.shape[0];

    public void Dispose() { MeanDifference.Dispose(); BaseMean.Dispose(); FinetunedMean.Dispose(); }
}

/// <summary>
/// The activation difference lens (ADL; Minder et al. 2025, the diffing-toolkit's activation_difference_lens): the mean
/// difference of the fine-tune's and the base's activations at a middle layer, per position, over a pretraining-like corpus,
/// read out with the logit lens (the fine-tune's final norm and unembedding) and with a patchscope, and used to steer the
/// base, norm-matched to the fine-tune's activations.
/// </summary>
public static class ActivationDifferenceLens
{
    /// <summary>Means over the first <paramref name="positions"/> positions of up to <paramref name="maxSamples"/> contexts (each at least that long).</summary>
    public static AdlStatistics Compute(HookedTransformer baseModel, HookedTransformer finetuned, string hook, IEnumerable<long[]> contexts,
        int positions = 8, int maxSamples = 10_000, int batchSize = 16, IReadOnlyList<string>? modelNames = null)
    {
        int d = PairedActivations.Check([baseModel, finetuned], hook, modelNames);
        var readBase = ModelActivations.Reader(baseModel, hook);
        var readFt = ModelActivations.Reader(finetuned, hook);
        var sumDiff = torch.zeros(positions, d, ScalarType.Float64);
        var sumBase = torch.zeros(positions, d, ScalarType.Float64);
        var sumFt = torch.zeros(positions, d, ScalarType.Float64);
        double normSum = 0;
        long normCount = 0, samples = 0;
        foreach (var batch in Contexts.Batches(contexts.Where(c => c.Length >= positions).Take(maxSamples).Select(c => c[..positions]), batchSize))
        {
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var hb = readBase(batch)[0].to(ScalarType.Float64); // [batch, P, d]
            var hf = readFt(batch)[0].to(ScalarType.Float64); // [batch, P, d]
            sumDiff.add_((hf - hb).sum(dim: 0));
            sumBase.add_(hb.sum(dim: 0));
            sumFt.add_(hf.sum(dim: 0));
            if (positions > 1)
            {
                normSum += hf[.., 1..].norm(-1).sum().item<double>();
                normCount += hf.shape[0] * (positions - 1);
            }
            samples += batch.shape[0];
        }
        if (samples == 0) throw new DiffingException($"No context has the {positions} tokens the activation difference lens reads; give longer text or fewer positions.");
        return new AdlStatistics(hook, samples, (sumDiff / samples).to(ScalarType.Float32), (sumBase / samples).to(ScalarType.Float32),
            (sumFt / samples).to(ScalarType.Float32), normCount > 0 ? normSum / normCount : 0);
    }

    /// <summary>The logit lens of a residual-stream vector [d]: the model's final norm and unembedding, softmax, top <paramref name="k"/>.</summary>
    public static IReadOnlyList<ReadoutToken> LogitLens(HookedTransformer model, Tensor vector, int k = 10, Func<int, string>? toText = null)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var logits = model.unembed.Forward(FinalNorm.Apply(model, vector.reshape(1, 1, -1).to(model.unembed.W_U.dtype))).reshape(-1); // [d_vocab]
        return Top(logits.softmax(-1), k, toText);
    }

    /// <summary>
    /// A patchscope readout: <paramref name="prompt"/> (an identity prompt such as "man -&gt; man\n1135 -&gt; 1135\nhello -&gt; hello\n?")
    /// runs through <paramref name="model"/> with the activation at <paramref name="hook"/> of its last position replaced by
    /// scale · ‖h‖ · δ/‖δ‖ (‖h‖ the mean activation norm there), and the next-token distribution is read, one per scale.
    /// </summary>
    public static IReadOnlyList<PatchscopeReadout> Patchscope(HookedTransformer model, string hook, Tensor vector, long[] prompt,
        IReadOnlyList<double> scales, double activationNorm, int k = 10, Func<int, string>? toText = null)
    {
        model.GetHookPoint(hook);
        var readouts = new List<PatchscopeReadout>();
        var unit = vector.reshape(-1) / vector.norm().clamp_min(1e-12); // [d]
        foreach (double scale in scales)
        {
            using var scope = torch.NewDisposeScope();
            using var _ = torch.no_grad();
            var tokens = torch.tensor(prompt).unsqueeze(0); // [1, pos]
            HookFunction patch = (activation, _) =>
            {
                var patched = activation.clone(); // [1, pos, d]
                patched[0, -1] = (unit * (scale * activationNorm)).to(activation.dtype);
                return patched;
            };
            var logits = model.RunWithHooks(tokens, [(hook, patch)])[0, -1]; // [d_vocab]
            readouts.Add(new PatchscopeReadout(scale, Top(logits.softmax(-1), k, toText)));
        }
        return readouts;
    }

    /// <summary>
    /// Norm-matched steering: a hook that adds strength · <paramref name="targetNorm"/> · δ/‖δ‖ at every position of
    /// <paramref name="hook"/> (the ADL's steering, with the target the fine-tune's mean activation norm at that layer).
    /// Dispose the result to remove it.
    /// </summary>
    public static IDisposable Steer(HookedTransformer model, string hook, Tensor vector, double strength, double targetNorm)
    {
        var add = (vector.reshape(-1) / vector.norm().clamp_min(1e-12) * (strength * targetNorm)).detach().clone().DetachFromDisposeScope(); // [d]
        var handle = model.AddHook(hook, (activation, _) => activation + add.to(activation.dtype));
        return new Steering(handle, add);
    }

    sealed class Steering(IDisposable handle, Tensor vector) : IDisposable
    {
        public void Dispose() { handle.Dispose(); vector.Dispose(); }
    }

    static IReadOnlyList<ReadoutToken> Top(Tensor probs, int k, Func<int, string>? toText)
    {
        var (values, indices) = probs.topk(Math.Min(k, (int)probs.shape[0]));
        float[] p = values.data<float>().ToArray();
        long[] ids = indices.data<long>().ToArray();
        return [.. ids.Select((id, i) => new ReadoutToken((int)id, toText?.Invoke((int)id) ?? $"t{id}", p[i]))];
    }
}
