using System.Net;
using System.Text;

namespace SharpLens.Reports;

/// <summary>
/// A self-contained HTML page: inline CSS, inline SVG, no script, font or file from outside, so it opens offline and
/// can be mailed as one file. Add headings, paragraphs, tables and charts (<see cref="Svg"/>) in reading order.
/// </summary>
public sealed class HtmlReport(string title)
{
    readonly StringBuilder _body = new();

    public static string Escape(string text) => WebUtility.HtmlEncode(text);

    public HtmlReport Heading(string text, int level = 2) { _body.Append($"<h{level}>{Escape(text)}</h{level}>\n"); return this; }
    public HtmlReport Paragraph(string text, string? cssClass = null)
    {
        _body.Append(cssClass is null ? "<p>" : $"<p class=\"{cssClass}\">").Append(Escape(text)).Append("</p>\n");
        return this;
    }

    /// <summary>Appends trusted markup as it is (charts from <see cref="Svg"/>, or markup built with <see cref="Escape"/>).</summary>
    public HtmlReport Raw(string html) { _body.Append(html).Append('\n'); return this; }

    /// <summary>A row of key figures, each a big number with a caption.</summary>
    public HtmlReport Figures(IEnumerable<(string Caption, string Value)> figures)
    {
        _body.Append("<div class=\"figures\">");
        foreach (var (caption, value) in figures)
            _body.Append($"<div class=\"figure\"><div class=\"value\">{Escape(value)}</div><div class=\"caption\">{Escape(caption)}</div></div>");
        _body.Append("</div>\n");
        return this;
    }

    /// <summary>A table; cells are text (escaped here).</summary>
    public HtmlReport Table(IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        _body.Append("<table><thead><tr>");
        foreach (var h in headers) _body.Append($"<th>{Escape(h)}</th>");
        _body.Append("</tr></thead><tbody>");
        foreach (var row in rows)
        {
            _body.Append("<tr>");
            foreach (var cell in row) _body.Append($"<td>{Escape(cell)}</td>");
            _body.Append("</tr>");
        }
        _body.Append("</tbody></table>\n");
        return this;
    }

    /// <summary>Charts side by side, each with a caption, wrapping on narrow screens.</summary>
    public HtmlReport Gallery(IEnumerable<(string Caption, string Svg)> charts)
    {
        _body.Append("<div class=\"gallery\">");
        foreach (var (caption, svg) in charts)
            _body.Append($"<figure>{svg}<figcaption>{Escape(caption)}</figcaption></figure>");
        _body.Append("</div>\n");
        return this;
    }

    public string ToHtml() =>
        $"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
        $"<title>{Escape(title)}</title><style>{Stylesheet}</style></head>\n<body><main>\n<h1>{Escape(title)}</h1>\n{_body}</main></body></html>\n";

    /// <summary>Writes the page through a temporary file, so a reader never sees half a report.</summary>
    public void Save(string path) => IO.AtomicFile.WriteAllText(path, ToHtml());

    const string Stylesheet = """
        body { margin: 0; background: #f8fafc; color: #0f172a; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
        main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 48px; }
        h1 { font-size: 26px; margin: 8px 0 4px; }
        h2 { font-size: 19px; margin: 32px 0 8px; padding-top: 12px; border-top: 1px solid #e2e8f0; }
        p { margin: 6px 0 10px; max-width: 820px; }
        p.lead { color: #334155; font-size: 16px; }
        p.note { color: #64748b; font-size: 13px; }
        p.verdict { background: #ecfdf5; border-left: 4px solid #16a34a; padding: 8px 12px; font-weight: 600; }
        .figures { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0; }
        .figure { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 16px; min-width: 140px; }
        .figure .value { font-size: 22px; font-weight: 650; }
        .figure .caption { color: #64748b; font-size: 12px; }
        table { border-collapse: collapse; background: #fff; margin: 8px 0 12px; font-size: 14px; }
        th, td { border: 1px solid #e2e8f0; padding: 4px 10px; text-align: right; }
        th { background: #f1f5f9; font-weight: 600; }
        td:first-child, th:first-child { text-align: left; }
        .gallery { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
        figure { margin: 0; background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px; }
        figcaption { color: #334155; font-size: 13px; margin-top: 4px; max-width: 520px; }
        svg.chart { display: block; max-width: 100%; height: auto; font-family: system-ui, sans-serif; }
        svg .grid { stroke: #e2e8f0; } svg .axis { stroke: #94a3b8; } svg .marker { stroke: #94a3b8; stroke-dasharray: 4 3; }
        svg .tick { fill: #475569; } svg text.tick:not([font-size]) { font-size: 10px; } svg .legend { font-size: 12px; fill: #0f172a; }
        svg .title { font-size: 12px; fill: #334155; } svg .cell { font-size: 10px; }
        """;
}

/// <summary>Kept for callers of the old name: every write now goes through <see cref="IO.AtomicFile"/>.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => IO.AtomicFile.WriteAllText(path, text);
}
