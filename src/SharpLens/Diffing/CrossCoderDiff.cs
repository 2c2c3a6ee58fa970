using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SharpLens.Models;
using SharpLens.Reports;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>What <see cref="CrossCoderDiff.Run"/> trains and reads.</summary>
public sealed record CrossCoderDiffOptions
{
    public required string Hook { get; init; }
    public CrossCoderArchitecture Architecture { get; init; } = CrossCoderArchitecture.BatchTopK;
    public int K { get; init; } = 100;
    public int Expansion { get; init; } = 16;
    /// <summary>Latents; null: <see cref="Expansion"/> × d.</summary>
    public int? DictSize { get; init; }
    public long Tokens { get; init; } = 1_000_000;
    public int BatchSize { get; init; } = 2048;
    public double? LearningRate { get; init; }
    public double L1Penalty { get; init; } = 0.1;
    public int SharedLatents { get; init; }
    public long Seed { get; init; }
    /// <summary>Rows the shuffling buffer holds (memory: rows × M × d × 4 bytes); null: 16 batches.</summary>
    public long? BufferRows { get; init; }
    public int ContextsPerCall { get; init; } = 8;
    public IReadOnlyList<string> ModelNames { get; init; } = ["base", "finetuned"];
    /// <summary>Time the crosscoder's six GEMMs on one batch, the ceiling its training speed is compared with.</summary>
    public bool MeasureGemmCeiling { get; init; } = true;
}

/// <summary>A finished <c>diff crosscoder</c> run: the crosscoder (the caller's to dispose), its analysis, what was written.</summary>
public sealed record CrossCoderDiffResult(CrossCoder CrossCoder, CrossCoderAnalysis Analysis, AnalysisRecord Record, string Folder, string ReportPath);

/// <summary>
/// Crosscoder model diffing end to end: train on the models' paired activations, analyse on held-out text, write the
/// crosscoder as a dictionary_learning folder, <c>analysis.json</c> and <c>report.html</c> (relative-norm and cosine
/// histograms, the latent-scaling scatter, the exclusive latents' dashboards).
/// </summary>
public static class CrossCoderDiff
{
    public const string AnalysisFile = "analysis.json", ReportFile = "report.html";

    public static CrossCoderDiffResult Run(IReadOnlyList<HookedTransformer> models, IEnumerable<long[]> trainContexts, Tensor heldOutTokens,
        CrossCoderDiffOptions options, string outFolder, Func<IReadOnlyList<int>, IReadOnlyList<string>>? toStrTokens = null,
        IProgress<CrossCoderTrainingProgress>? progress = null, IReadOnlyCollection<int>? excludedTokenIds = null)
    {
        int d = PairedActivations.Check(models, options.Hook, options.ModelNames);
        int dict = options.DictSize ?? options.Expansion * d;
        int steps = (int)Math.Max(1, Math.Ceiling(options.Tokens / (double)options.BatchSize));
        var config = new CrossCoderConfig(d, dict, models.Count) { Architecture = options.Architecture, K = Math.Min(options.K, dict) };
        var settings = new CrossCoderTrainingSettings
        {
            Steps = steps, LearningRate = options.LearningRate, L1Penalty = options.L1Penalty, SharedLatents = options.SharedLatents, ReportEvery = 1,
        };
        var store = new ActivationStoreOptions { TrainBatchSize = options.BatchSize, BufferRows = options.BufferRows ?? 16L * options.BatchSize, Seed = options.Seed };
        double? ceiling = options.MeasureGemmCeiling ? GemmCeiling(options.BatchSize, models.Count * d, dict) : null;
        var (trainer, run) = CrossCoderTraining.Train(models, options.Hook, trainContexts, config, settings, store, excludedTokenIds,
            options.ContextsPerCall, progress, options.Seed, options.ModelNames);
        trainer.Dispose();
        var cc = trainer.CrossCoder;
        try
        {
            CrossCoderFiles.Save(cc, outFolder);
            var analysis = CrossCoderAnalysis.Run(cc, models, options.Hook, heldOutTokens, toStrTokens, excludedTokenIds: excludedTokenIds);
            var training = new TrainingRecordJson(steps, options.BatchSize, run.Tokens, run.Seconds, run.TokensPerSecond, ceiling,
                ceiling is { } c ? run.TokensPerSecond / c : null, store.BufferRows, run.BufferBytes, run.PeakBufferedRows,
                run.Last?.Loss ?? double.NaN, run.Last?.L0 ?? double.NaN);
            var record = Record(cc, analysis, options, training);
            AtomicFile.WriteAllText(Path.Combine(outFolder, AnalysisFile), JsonSerializer.Serialize(record, DiffingJson.Default.AnalysisRecord));
            string report = Path.Combine(outFolder, ReportFile);
            Report(record, analysis).Save(report);
            return new CrossCoderDiffResult(cc, analysis, record, Path.GetFullPath(outFolder), report);
        }
        catch
        {
            cc.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Tokens per second if training were only its GEMMs: the encoder and decoder products forward, and their four
    /// gradient products backward, on one batch [batch, M·d] × [M·d, F], timed on this machine now.
    /// </summary>
    public static double GemmCeiling(int batch, int inputWidth, int latents, int repeats = 5)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var x = torch.randn(batch, inputWidth); // [B, M·d]
        var w = torch.randn(inputWidth, latents); // [M·d, F]
        var f = torch.randn(batch, latents); // [B, F]
        void Once()
        {
            using var s = torch.NewDisposeScope();
            x.MatMul(w); f.MatMul(w.t()); // forward: encode, decode
            f.t().MatMul(x); x.t().MatMul(f); // backward: the weights' gradients
            f.MatMul(w.t()); x.MatMul(w); // backward: the activations' gradients
        }
        Once();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) Once();
        return batch * repeats / clock.Elapsed.TotalSeconds;
    }

    static AnalysisRecord Record(CrossCoder cc, CrossCoderAnalysis analysis, CrossCoderDiffOptions options, TrainingRecordJson training)
    {
        var n = analysis.Norms;
        var scaling = analysis.FinetuneOnlyScaling.Concat(analysis.SharedScaling).GroupBy(s => s.Latent).ToDictionary(g => g.Key, g => g.First());
        var latents = Enumerable.Range(0, n.Latents).Select(i =>
        {
            scaling.TryGetValue(i, out var s);
            return new LatentRecord(i, KindName(n.Kinds[i]), n.Base[i], n.Finetuned[i], n.Relative[i], n.NormDifference[i], n.Cosine[i],
                analysis.Evaluation.FiringCounts[i], s?.RatioError, s?.RatioReconstruction, s?.BetaBaseError, s?.BetaFinetunedError,
                s?.BetaBaseReconstruction, s?.BetaFinetunedReconstruction);
        }).ToList();
        var counts = Enum.GetValues<LatentKind>().ToDictionary(KindName, n.Count);
        return new AnalysisRecord(
            "relative_norm = |d_ft| / (|d_base| + |d_ft|) per latent: 1 = fine-tune-only, 0 = base-only, 0.5 = shared. Tags: finetune_only > 0.9, base_only < 0.1, shared |r - 0.5| < 0.1, dead = never fired on held-out text. norm_difference = ((|d_ft| - |d_base|) / max + 1) / 2 (Minder et al.'s orientation, also 1 = fine-tune-only).",
            options.ModelNames, options.Hook, cc.Config.Architecture == CrossCoderArchitecture.BatchTopK ? "batchtopk" : "l1", cc.DLatent,
            cc.Config.Architecture == CrossCoderArchitecture.BatchTopK ? cc.K : null,
            cc.Config.Architecture == CrossCoderArchitecture.BatchTopK ? cc.Threshold.item<float>() : null,
            analysis.Evaluation.Tokens, analysis.Evaluation.ExplainedVariance, analysis.Evaluation.L0, counts,
            DiffingCharts.Bin(Enumerable.Range(0, n.Latents).Where(i => n.Kinds[i] != LatentKind.Dead).Select(i => (double)n.Relative[i]), 50, 0, 1),
            n.MostFinetuneOnly(20), latents, training);
    }

    public static string KindName(LatentKind kind) => kind switch
    {
        LatentKind.FinetuneOnly => "finetune_only", LatentKind.BaseOnly => "base_only", LatentKind.Shared => "shared",
        LatentKind.Dead => "dead", _ => "other",
    };

    static string F(double v, string format = "0.###") => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    /// <summary>The self-contained report: figures, histograms, the latent-scaling scatter, the top fine-tune-only latents, the dashboards.</summary>
    public static HtmlReport Report(AnalysisRecord record, CrossCoderAnalysis analysis)
    {
        var n = analysis.Norms;
        var report = new HtmlReport($"Crosscoder diff at {record.Hook}: {string.Join(" vs ", record.Models)}");
        report.Paragraph($"A {record.Architecture} crosscoder with {record.DictSize} latents over {record.Hook} of {string.Join(", ", record.Models)} " +
                         $"(model 0 is the base, the last the fine-tune). Relative decoder norm r = ‖d_ft‖ / (‖d_base‖ + ‖d_ft‖): 1 = fine-tune-only, 0 = base-only, ½ = shared.", "lead");
        var figures = new List<(string, string)>();
        for (int m = 0; m < record.ExplainedVariance.Count; m++) figures.Add(($"explained variance, {record.Models.ElementAtOrDefault(m) ?? $"model {m}"}", F(record.ExplainedVariance[m], "0.0%")));
        figures.Add(("L0 (held out)", F(record.L0, "0.0")));
        foreach (var kind in new[] { "finetune_only", "base_only", "shared", "other", "dead" }) figures.Add((kind.Replace('_', '-') + " latents", record.Counts[kind].ToString(CultureInfo.InvariantCulture)));
        if (record.Training is { } t) figures.Add(("training tokens/s" + (t.FractionOfCeiling is { } fr ? $" ({F(fr, "0%")} of GEMM ceiling)" : ""), F(t.TokensPerSecond, "N0")));
        report.Figures(figures);

        var sharedCos = Enumerable.Range(0, n.Latents).Where(i => n.Kinds[i] == LatentKind.Shared).Select(i => (double)n.Cosine[i]).ToList();
        var points = analysis.FinetuneOnlyScaling.Select(s => (s.RatioReconstruction, s.RatioError, "#dc2626", $"latent {s.Latent} (fine-tune-only side): ν^r {F(s.RatioReconstruction)}, ν^ε {F(s.RatioError)}"))
            .Concat(analysis.SharedScaling.Select(s => (s.RatioReconstruction, s.RatioError, "#6b7280", $"latent {s.Latent} (shared): ν^r {F(s.RatioReconstruction)}, ν^ε {F(s.RatioError)}"))).ToList();
        report.Gallery([
            ("Relative decoder norm of every live latent (log count): the shared mode near ½, exclusive latents at the ends (1 = fine-tune-only).",
                DiffingCharts.Histogram([.. record.RelativeNormHistogram], 0, 1, "relative decoder norm ‖d_ft‖ / (‖d_base‖ + ‖d_ft‖)", "latents (log)")),
            ($"Decoder cosine of the {sharedCos.Count} shared latents: aligned decoders sit near 1.",
                DiffingCharts.Histogram(DiffingCharts.Bin(sharedCos, 40, -1, 1), -1, 1, "cos(d_base, d_ft)", "latents (log)", color: "#16a34a")),
            ("Latent scaling (Minder et al.): ν^r = β(base recon)/β(ft recon) against ν^ε = β(base error)/β(ft error). Red: the most fine-tune-only latents; grey: shared baseline. A genuinely fine-tune-specific latent sits near (0, 0).",
                DiffingCharts.Scatter(points, -0.2, 1.2, -0.2, 1.2, "ν^r (reconstruction ratio)", "ν^ε (error ratio)")),
        ]);

        report.Heading("Most fine-tune-only latents");
        var scaling = analysis.FinetuneOnlyScaling.ToDictionary(s => s.Latent);
        var dashboards = analysis.Dashboards?.Features.ToDictionary(f => f.Feature);
        report.Table(["latent", "relative norm", "‖d_base‖", "‖d_ft‖", "cosine", "fires (held out)", "ν^ε", "ν^r", "top context token", "raises logits of"],
            n.MostFinetuneOnly(20).Select(i =>
            {
                scaling.TryGetValue(i, out var s);
                string topToken = "", raises = "";
                if (dashboards is not null && dashboards.TryGetValue(i, out var f))
                {
                    topToken = f.TopExamples.Count > 0 ? f.TopExamples[0].Window[f.TopExamples[0].Center].Token : "never fires";
                    raises = f.TopLogits is { } top ? string.Join(" ", top.Take(5).Select(l => l.Token)) : "";
                }
                return (IReadOnlyList<string>)[i.ToString(CultureInfo.InvariantCulture), F(n.Relative[i]), F(n.Base[i]), F(n.Finetuned[i]), F(n.Cosine[i]),
                    record.Latents[i].FiringCount.ToString(CultureInfo.InvariantCulture), s is null ? "" : F(s.RatioError), s is null ? "" : F(s.RatioReconstruction), topToken, raises];
            }));
        if (analysis.Dashboards is { } dash)
        {
            report.Heading("Dashboards of the exclusive latents");
            report.Paragraph("Max-activating held-out contexts (activations read from both models through the crosscoder) and the logit effects of each latent's fine-tune decoder.", "note");
            string page = dash.ToHtml();
            report.Raw($"<iframe title=\"exclusive latents' dashboards\" style=\"width:100%;height:1400px;border:1px solid #e2e8f0;border-radius:8px;background:#fff\" srcdoc=\"{HtmlReport.Escape(page)}\"></iframe>");
        }
        return report;
    }
}
