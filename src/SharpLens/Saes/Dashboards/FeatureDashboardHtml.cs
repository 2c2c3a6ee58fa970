using System.Globalization;
using System.Text;
using SharpLens.Reports;
using SharpLens.Techniques.MaxActivating;

namespace SharpLens.Saes.Dashboards;

/// <summary>
/// The dashboard page: an <see cref="HtmlReport"/> with a feature index and search box (a few lines of inline script),
/// then per feature its figures, activation histogram (inline SVG), logit effects and example contexts. Each token is
/// shaded in proportion to its activation over the feature's maximum; hovering shows the token and the value.
/// </summary>
static class FeatureDashboardHtml
{
    static string F(double v, string format = "0.###") => v.ToString(format, CultureInfo.InvariantCulture);
    static string E(string s) => HtmlReport.Escape(s);

    public static string Render(FeatureDashboard dashboard)
    {
        var report = new HtmlReport(dashboard.Title);
        report.Raw($"<style>{Stylesheet}</style>");
        report.Figures([("tokens read", dashboard.TokensRead.ToString("N0", CultureInfo.InvariantCulture)), ("features shown", dashboard.Features.Count.ToString(CultureInfo.InvariantCulture))]);
        if (dashboard.LogitNote is { } note) report.Paragraph(note, "note");

        var index = new StringBuilder("<div class=\"index\"><input id=\"search\" type=\"search\" placeholder=\"Search features by number or token\" aria-label=\"Search features\"><ul id=\"feature-index\">");
        foreach (var f in dashboard.Features)
            index.Append($"<li data-search=\"{E(SearchText(f))}\"><a href=\"#feature-{f.Feature}\">#{f.Feature}</a> " +
                         $"<span class=\"muted\">density {F(f.Density, "0.####")} · max {F(f.MaxActivation, "0.##")} · {E(TopToken(f))}</span></li>");
        report.Raw(index.Append("</ul></div>").ToString());

        foreach (var f in dashboard.Features) report.Raw(Section(f));
        report.Raw($"<script>{Script}</script>");
        return report.ToHtml();
    }

    static string TopToken(FeatureData f) => f.TopExamples.Count == 0 ? "never fires" : $"top token {Visible(f.TopExamples[0].Window[f.TopExamples[0].Center].Token)}";

    static string SearchText(FeatureData f) =>
        $"#{f.Feature} {f.Feature} " + string.Join(" ", f.TopExamples.Select(e => e.Window[e.Center].Token.Trim()).Distinct()) + " " +
        string.Join(" ", (f.TopLogits ?? []).Select(l => l.Token.Trim()));

    static string Section(FeatureData f)
    {
        var html = new StringBuilder();
        html.Append($"<section class=\"feature\" id=\"feature-{f.Feature}\" data-search=\"{E(SearchText(f))}\"><h2>Feature {f.Feature}</h2>");
        html.Append("<div class=\"figures\">");
        foreach (var (caption, value) in new[] { ("density", F(f.Density, "0.#####")), ("max activation", F(f.MaxActivation)), ("mean when firing", double.IsNaN(f.MeanWhenFiring) ? "–" : F(f.MeanWhenFiring)) })
            html.Append($"<div class=\"figure\"><div class=\"value\">{value}</div><div class=\"caption\">{caption}</div></div>");
        html.Append("</div><div class=\"columns\"><div>");
        if (f.Histogram is { } histogram) html.Append("<h3>Activations above zero</h3>").Append(Histogram(histogram));
        if (f.TopLogits is { } top && f.BottomLogits is { } bottom)
            html.Append("<h3>Logit effects (W_dec[f] · W_U)</h3><div class=\"logits\">").Append(LogitTable("raises", top, "pos")).Append(LogitTable("lowers", bottom, "neg")).Append("</div>");
        html.Append("</div><div class=\"examples\">");
        if (f.TopExamples.Count == 0) html.Append("<p class=\"note\">This feature never fired on these tokens.</p>");
        else
        {
            html.Append("<h3>Top activations</h3>");
            foreach (var example in f.TopExamples) html.Append(Example(example, f.MaxActivation));
        }
        foreach (var interval in f.Intervals.Reverse())
        {
            html.Append($"<h3>Interval ({F(interval.Low, "0.##")}, {F(interval.High, "0.##")}] <span class=\"muted\">{interval.Count:N0} tokens</span></h3>");
            foreach (var example in interval.Samples) html.Append(Example(example, f.MaxActivation));
        }
        return html.Append("</div></div></section>").ToString();
    }

    /// <summary>One context: tokens as spans shaded by activation / max, the example's own token outlined.</summary>
    static string Example(ContextExample example, float max)
    {
        var html = new StringBuilder($"<div class=\"context\"><span class=\"value\">{F(example.Activation, "0.00")}</span>");
        for (int i = 0; i < example.Window.Count; i++)
        {
            var (token, value) = example.Window[i];
            double alpha = max > 0 ? Math.Clamp(value / max, 0, 1) : 0;
            string title = $"{Visible(token)}: {F(value, "0.0000")}";
            html.Append($"<span class=\"tok{(i == example.Center ? " center" : "")}\" style=\"background:rgba(234,88,12,{F(alpha, "0.###")})\" title=\"{E(title)}\">{E(Visible(token))}</span>");
        }
        return html.Append("</div>").ToString();
    }

    /// <summary>Whitespace made visible, so a newline or a leading space can be seen and hovered.</summary>
    static string Visible(string token) => token.Replace("\n", "↵").Replace("\t", "⇥").Replace(" ", "\u00a0");

    static string LogitTable(string caption, IReadOnlyList<LogitEffect> effects, string cls)
    {
        var html = new StringBuilder($"<table class=\"{cls}\"><thead><tr><th>{caption}</th><th>logit</th></tr></thead><tbody>");
        foreach (var e in effects) html.Append($"<tr><td>{E(Visible(e.Token))}</td><td>{F(e.Value, "+0.000;-0.000")}</td></tr>");
        return html.Append("</tbody></table>").ToString();
    }

    /// <summary>Bars for the bins of <paramref name="h"/>, each with a tooltip giving its range and count.</summary>
    static string Histogram(ActivationHistogram h, int width = 360, int height = 140)
    {
        const int left = 40, bottom = 22, top = 6;
        long peak = Math.Max(1, h.Counts.Max());
        double barW = (width - left - 4.0) / h.Bins, plotH = height - top - bottom;
        var svg = new StringBuilder($"<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">");
        for (int i = 0; i < h.Bins; i++)
        {
            double barH = plotH * h.Counts[i] / peak;
            svg.Append($"<rect x=\"{F(left + i * barW)}\" y=\"{F(top + plotH - barH)}\" width=\"{F(Math.Max(barW - 1, 0.5))}\" height=\"{F(barH)}\" fill=\"#ea580c\">" +
                       $"<title>[{F(h.Edge(i), "0.###")}, {F(h.Edge(i + 1), "0.###")}{(i == h.Bins - 1 ? "]" : ")")}: {h.Counts[i]}</title></rect>");
        }
        svg.Append($"<line x1=\"{left}\" x2=\"{width - 4}\" y1=\"{F(top + plotH)}\" y2=\"{F(top + plotH)}\" class=\"axis\"/>");
        svg.Append($"<text x=\"{left}\" y=\"{height - 6}\" class=\"tick\">0</text><text x=\"{width - 4}\" y=\"{height - 6}\" text-anchor=\"end\" class=\"tick\">{F(h.Max, "0.##")}</text>");
        svg.Append($"<text x=\"{left - 4}\" y=\"{top + 8}\" text-anchor=\"end\" class=\"tick\">{peak}</text>");
        return svg.Append("</svg>").ToString();
    }

    const string Stylesheet = """
        .index { position: sticky; top: 0; background: #f8fafc; padding: 8px 0; z-index: 1; }
        #search { width: 100%; max-width: 480px; padding: 6px 10px; font-size: 15px; border: 1px solid #cbd5e1; border-radius: 6px; }
        #feature-index { list-style: none; padding: 0; margin: 8px 0; columns: 3 260px; font-size: 13px; }
        .muted { color: #64748b; font-size: 12px; font-weight: normal; }
        .feature h3 { font-size: 14px; margin: 14px 0 4px; }
        .columns { display: flex; flex-wrap: wrap; gap: 24px; }
        .columns > div:first-child { flex: 0 0 370px; }
        .examples { flex: 1 1 520px; min-width: 0; }
        .context { font: 13px/1.9 ui-monospace, "SFMono-Regular", Menlo, monospace; overflow-wrap: anywhere; margin-bottom: 2px; }
        .context .value { display: inline-block; width: 52px; color: #64748b; text-align: right; margin-right: 8px; }
        .tok { border-radius: 2px; padding: 1px 0; }
        .tok.center { outline: 1.5px solid #9a3412; }
        .tok:hover { outline: 1.5px solid #0f172a; }
        .logits { display: flex; gap: 10px; }
        .logits table { font: 12px ui-monospace, Menlo, monospace; }
        table.pos td:last-child { color: #1d4ed8; } table.neg td:last-child { color: #b91c1c; }
        """;

    // Filters the index and the sections as the reader types: a feature number ("12" or "#12") or a token.
    const string Script = """
        (function () {
          var box = document.getElementById('search');
          var items = document.querySelectorAll('#feature-index li, section.feature');
          box.addEventListener('input', function () {
            var q = box.value.trim().toLowerCase();
            items.forEach(function (el) {
              var words = el.getAttribute('data-search').toLowerCase();
              el.style.display = q === '' || words.split(' ').some(function (w) { return w === q || (q.length > 1 && w.indexOf(q) >= 0); }) ? '' : 'none';
            });
          });
        })();
        """;
}
