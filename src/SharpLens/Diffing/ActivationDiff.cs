using System.Globalization;
using System.Text.Json;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Reports;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>What <see cref="ActivationDiff.Run"/> reads and writes.</summary>
public sealed record ActivationDiffOptions
{
    public required string Hook { get; init; }
    public int Positions { get; init; } = 8;
    public int MaxSamples { get; init; } = 10_000;
    public int TopTokens { get; init; } = 20;
    /// <summary>The patchscope's identity prompt as token ids; null skips the patchscope.</summary>
    public long[]? PatchscopePrompt { get; init; }
    public IReadOnlyList<double> PatchscopeScales { get; init; } = [0.5, 1, 2, 4, 8];
    /// <summary>Steering strengths (× the fine-tune's mean activation norm) applied to the base with the position-<see cref="SteerPosition"/> difference.</summary>
    public IReadOnlyList<double> SteeringStrengths { get; init; } = [0.5, 1, 2];
    public int SteerPosition { get; init; } = 1;
    /// <summary>A prompt the steered base continues (greedy), when the model reads text.</summary>
    public long[]? SteeringPrompt { get; init; }
    public int SteeringTokens { get; init; } = 24;
    public IReadOnlyList<string> ModelNames { get; init; } = ["base", "finetuned"];
}

/// <summary>
/// The activation difference lens end to end (<c>sharplens diff activations</c>): <see cref="ActivationDifferenceLens.Compute"/> over a
/// corpus, each position's mean difference read with the fine-tune's logit lens and the base's patchscope, the base steered with it;
/// writes <c>adl.npz</c> (mean_diff, base_mean, finetuned_mean [P, d]), <c>adl.json</c> and <c>report.html</c>.
/// </summary>
public static class ActivationDiff
{
    public static AdlRecord Run(HookedTransformer baseModel, HookedTransformer finetuned, IEnumerable<long[]> contexts, Tensor steeringContexts,
        ActivationDiffOptions options, string outFolder, Func<int, string>? toText = null, Func<IReadOnlyList<int>, string>? decode = null)
    {
        using var stats = ActivationDifferenceLens.Compute(baseModel, finetuned, options.Hook, contexts, options.Positions, options.MaxSamples, modelNames: options.ModelNames);
        Directory.CreateDirectory(outFolder);
        NumpyFiles.SaveNpz(Path.Combine(outFolder, "adl.npz"),
            [new("mean_diff", stats.MeanDifference), new("base_mean", stats.BaseMean), new("finetuned_mean", stats.FinetunedMean)]);
        var readouts = new List<AdlPositionRecord>();
        for (int j = 0; j < stats.Positions; j++)
        {
            var delta = stats.MeanDifference[j];
            var lens = ActivationDifferenceLens.LogitLens(finetuned, delta, options.TopTokens, toText);
            var patchscope = options.PatchscopePrompt is { } prompt
                ? ActivationDifferenceLens.Patchscope(baseModel, options.Hook, delta, prompt, options.PatchscopeScales, stats.FinetunedNorm, options.TopTokens, toText)
                : null;
            readouts.Add(new AdlPositionRecord(j, delta.norm().item<float>(), lens, patchscope));
        }
        var steering = Steering(baseModel, stats, steeringContexts, options, toText, decode);
        var record = new AdlRecord(options.ModelNames, options.Hook, stats.Samples, stats.Positions, stats.FinetunedNorm, readouts, steering);
        AtomicFile.WriteAllText(Path.Combine(outFolder, "adl.json"), JsonSerializer.Serialize(record, DiffingJson.Default.AdlRecord));
        Report(record).Save(Path.Combine(outFolder, "report.html"));
        return record;
    }

    /// <summary>For each strength: the base's mean next-token distribution over <paramref name="contexts"/> when steered, and a steered continuation.</summary>
    static List<SteeringRecord> Steering(HookedTransformer model, AdlStatistics stats, Tensor contexts, ActivationDiffOptions options,
        Func<int, string>? toText, Func<IReadOnlyList<int>, string>? decode)
    {
        var records = new List<SteeringRecord>();
        int position = Math.Min(options.SteerPosition, stats.Positions - 1);
        var delta = stats.MeanDifference[position];
        string? Continue()
        {
            if (options.SteeringPrompt is not { } prompt || decode is null) return null;
            using var scope = torch.NewDisposeScope();
            var output = model.Generate(torch.tensor(prompt).unsqueeze(0), options.SteeringTokens, temperature: 0);
            return decode([.. output[0].data<long>().ToArray().Skip(prompt.Length).Select(i => (int)i)]);
        }
        string? unsteered = Continue();
        records.Add(new SteeringRecord(position, 0, PromptText(options, decode), unsteered, unsteered, MeanNext(model, contexts, options.TopTokens, toText)));
        foreach (double strength in options.SteeringStrengths)
        {
            using var steer = ActivationDifferenceLens.Steer(model, options.Hook, delta, strength, stats.FinetunedNorm);
            records.Add(new SteeringRecord(position, strength, PromptText(options, decode), unsteered, Continue(), MeanNext(model, contexts, options.TopTokens, toText)));
        }
        return records;
    }

    static string? PromptText(ActivationDiffOptions options, Func<IReadOnlyList<int>, string>? decode) =>
        options.SteeringPrompt is { } p && decode is not null ? decode([.. p.Select(i => (int)i)]) : null;

    static IReadOnlyList<ReadoutToken> MeanNext(HookedTransformer model, Tensor contexts, int k, Func<int, string>? toText)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var probs = model.Run(contexts).softmax(-1)[.., 1..].reshape(-1, model.Config.DVocab).mean([0]); // [d_vocab]
        var (values, indices) = probs.topk(Math.Min(k, (int)probs.shape[0]));
        return [.. indices.data<long>().ToArray().Zip(values.data<float>().ToArray()).Select(p => new ReadoutToken((int)p.First, toText?.Invoke((int)p.First) ?? $"t{p.First}", p.Second))];
    }

    static string F(double v) => v.ToString("0.###", CultureInfo.InvariantCulture);
    static string Tokens(IEnumerable<ReadoutToken> tokens) => string.Join("  ", tokens.Select(t => $"{t.Text.Replace("\n", "\\n")} ({F(t.Probability)})"));

    public static HtmlReport Report(AdlRecord record)
    {
        var report = new HtmlReport($"Activation difference lens at {record.Hook}: {string.Join(" − ", record.Models.Reverse())}");
        report.Paragraph($"Mean over {record.Samples:N0} contexts of δ_j = h^ft_j − h^base_j at {record.Hook}, per position j. Logit lens: the fine-tune's " +
                         "final norm and unembedding applied to δ_j. Patchscope: δ_j (norm-matched) written into the base's last position of an identity prompt. " +
                         $"Steering: the base with δ added at every position, scaled to strength × the fine-tune's mean activation norm ({F(record.FinetunedActivationNorm)}).", "lead");
        report.Gallery([("‖δ_j‖ per position: where the fine-tune differs most.", Svg.LinePlot(
            [new Series("‖mean δ‖", [.. record.Readouts.Select(r => (double)r.Position)], [.. record.Readouts.Select(r => r.Norm)], Svg.Blue)], "position", "norm"))]);
        report.Heading("Logit lens of the mean difference");
        report.Table(["position", "‖δ‖", "top tokens (probability)"], record.Readouts.Select(r => (IReadOnlyList<string>)[r.Position.ToString(CultureInfo.InvariantCulture), F(r.Norm), Tokens(r.LogitLens.Take(10))]));
        if (record.Readouts.Any(r => r.Patchscope is not null))
        {
            report.Heading("Patchscope");
            report.Table(["position", "scale", "top tokens"], record.Readouts.Where(r => r.Patchscope is not null).SelectMany(r => r.Patchscope!.Select(p =>
                (IReadOnlyList<string>)[r.Position.ToString(CultureInfo.InvariantCulture), F(p.Scale), Tokens(p.Top.Take(8))])));
        }
        if (record.Steering is { Count: > 0 } steering)
        {
            report.Heading($"Steering the base with δ at position {steering[0].Position}");
            report.Table(["strength", "mean next-token distribution over held-out text", "continuation"],
                steering.Select(s => (IReadOnlyList<string>)[F(s.Strength), Tokens((s.SteeredNext ?? []).Take(8)), s.Steered ?? ""]));
        }
        return report;
    }
}
