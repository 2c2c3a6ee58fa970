using Microsoft.DotNet.Interactive.Formatting;
using SharpLens.Hooks;
using SharpLens.Organisms;
using SharpLens.Reports;
using SharpLens.Saes.Dashboards;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using SharpLens.Training;
using static TorchSharp.torch;

namespace SharpLens.Interactive;

/// <summary>
/// Registers text/html formatters (Microsoft.DotNet.Interactive.Formatting) for SharpLens objects, so a notebook cell
/// that ends in one shows it inline: tensors (shape, dtype, statistics, a small table), attention patterns, the logit
/// lens, patching heatmaps, head scores, the induction findings, loss curves, caches, and whole reports and SAE feature
/// dashboards (in an iframe). The package's <c>interactive-extensions/dotnet/extension.dib</c> calls
/// <see cref="Register"/> when <c>#r "nuget: SharpLens.Interactive"</c> adds it; calling it again is harmless.
/// </summary>
public static class SharpLensFormatters
{
    public const string MimeType = "text/html";

    public static void Register()
    {
        Html<Tensor>(TensorHtml.Render);
        Html<AttentionPatterns>(p => p.ToHtml());
        Html<LogitLensView>(v => v.ToHtml());
        Html<LogitLensResult>(lens => new LogitLensView(lens).ToHtml());
        Html<PatchingResult>(Views.Patching);
        Html<TrainingRecord>(Views.LossCurve);
        Html<HeadScores>(Views.Scores);
        Html<InductionFindings>(Views.Induction);
        Html<AttentionSummary>(Views.Attention);
        Html<ActivationCache>(Views.Cache);
        Html<HtmlReport>(r => Inline.Page("SharpLens report", r.ToHtml()));
        Html<FeatureDashboard>(d => Inline.Page(d.Title, d.ToHtml(), height: 720));
    }

    static void Html<T>(Func<T, string> render)
    {
        Formatter.Register<T>(render, MimeType);
        Formatter.SetPreferredMimeTypesFor(typeof(T), MimeType);
    }
}
