using System.Globalization;
using System.Net;
using System.Text;

namespace SharpLens.Interactive;

/// <summary>
/// The wrapper every inline output shares: a <c>div.sharplens</c> with its own scoped stylesheet (the notebook page's
/// styles stay untouched), no script, no font or file from outside. Full pages (reports, dashboards) go in an iframe.
/// </summary>
public static class Inline
{
    internal static string E(string s) => WebUtility.HtmlEncode(s);
    internal static string F(double v, string format = "0.###") => v.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A fragment: a title line, then the body (HTML), inside the scoped wrapper.</summary>
    public static string Fragment(string title, string body) =>
        $"<div class=\"sharplens\"><style>{Stylesheet}</style><div class=\"sl-title\">{E(title)}</div>{body}</div>";

    /// <summary>
    /// A whole HTML page (an HtmlReport, a feature dashboard) in a sandboxed iframe: its stylesheet and script stay inside,
    /// and it is still one self-contained output that opens offline.
    /// </summary>
    public static string Page(string title, string html, int height = 640) =>
        $"<div class=\"sharplens\"><style>{Stylesheet}</style><div class=\"sl-title\">{E(title)}</div>" +
        $"<iframe title=\"{E(title)}\" sandbox=\"allow-scripts\" style=\"width:100%;height:{height}px;border:1px solid #e2e8f0;border-radius:6px;resize:vertical\" " +
        $"srcdoc=\"{E(html)}\"></iframe></div>";

    /// <summary>A row of labelled figures ("clean logit diff 1.234").</summary>
    public static string Figures(IEnumerable<(string Caption, string Value)> figures)
    {
        var html = new StringBuilder("<div class=\"sl-figures\">");
        foreach (var (caption, value) in figures)
            html.Append($"<div class=\"sl-figure\"><div class=\"sl-value\">{E(value)}</div><div class=\"sl-caption\">{E(caption)}</div></div>");
        return html.Append("</div>").ToString();
    }

    /// <summary>A plain table of strings; the first column is left-aligned, the rest right-aligned.</summary>
    public static string Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var html = new StringBuilder("<table class=\"sl-table\"><thead><tr>");
        foreach (var h in headers) html.Append($"<th>{E(h)}</th>");
        html.Append("</tr></thead><tbody>");
        foreach (var row in rows)
        {
            html.Append("<tr>");
            foreach (var cell in row) html.Append($"<td>{E(cell)}</td>");
            html.Append("</tr>");
        }
        return html.Append("</tbody></table>").ToString();
    }

    /// <summary>Charts side by side, each with a caption.</summary>
    public static string Gallery(IEnumerable<(string Caption, string Svg)> charts)
    {
        var html = new StringBuilder("<div class=\"sl-gallery\">");
        foreach (var (caption, svg) in charts) html.Append($"<figure>{svg}<figcaption>{E(caption)}</figcaption></figure>");
        return html.Append("</div>").ToString();
    }

    /// <summary>White (0) to deep blue (1), the heatmaps' scale.</summary>
    internal static string Blue(double t)
    {
        t = double.IsFinite(t) ? Math.Clamp(t, 0, 1) : 0;
        int r = (int)Math.Round(255 + (30 - 255) * t), g = (int)Math.Round(255 + (64 - 255) * t), b = (int)Math.Round(255 + (175 - 255) * t);
        return $"#{r:x2}{g:x2}{b:x2}";
    }

    const string Stylesheet = """
        .sharplens { font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #0f172a; }
        .sharplens .sl-title { font-weight: 600; margin: 2px 0 6px; }
        .sharplens .sl-note { color: #64748b; font-size: 12px; margin: 4px 0; }
        .sharplens .sl-figures { display: flex; flex-wrap: wrap; gap: 8px; margin: 6px 0; }
        .sharplens .sl-figure { border: 1px solid #e2e8f0; border-radius: 6px; padding: 4px 10px; background: #fff; }
        .sharplens .sl-value { font-size: 16px; font-weight: 650; }
        .sharplens .sl-caption { color: #64748b; font-size: 11px; }
        .sharplens table.sl-table { border-collapse: collapse; background: #fff; margin: 4px 0; font-size: 12px; }
        .sharplens table.sl-table th, .sharplens table.sl-table td { border: 1px solid #e2e8f0; padding: 2px 8px; text-align: right; font-variant-numeric: tabular-nums; }
        .sharplens table.sl-table th { background: #f1f5f9; font-weight: 600; }
        .sharplens table.sl-table td:first-child, .sharplens table.sl-table th:first-child { text-align: left; }
        .sharplens table.sl-lens td { min-width: 44px; text-align: center; }
        .sharplens table.sl-lens td small { display: block; font-size: 10px; opacity: 0.8; }
        .sharplens .sl-gallery { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
        .sharplens figure { margin: 0; background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: 6px; }
        .sharplens figcaption { color: #334155; font-size: 12px; margin-top: 2px; max-width: 480px; }
        .sharplens svg.chart { display: block; max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
        .sharplens svg .grid { stroke: #e2e8f0; } .sharplens svg .axis { stroke: #94a3b8; } .sharplens svg .marker { stroke: #94a3b8; stroke-dasharray: 4 3; }
        .sharplens svg .tick { fill: #475569; } .sharplens svg text.tick:not([font-size]) { font-size: 10px; } .sharplens svg .legend { font-size: 12px; fill: #0f172a; }
        .sharplens svg .title { font-size: 12px; fill: #334155; } .sharplens svg .cell { font-size: 10px; }
        """;
}
