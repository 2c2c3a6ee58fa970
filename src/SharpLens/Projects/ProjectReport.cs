using System.Net;
using System.Text;
using SharpLens.IO;

namespace SharpLens.Projects;

/// <summary>
/// A project's write-up as one self-contained HTML page (inline CSS, images as data: URIs, no script): the log, every
/// run with its figures (PNG, SVG) and tables (CSV, TSV, JSON) and output, and the commands that reproduce it all.
/// </summary>
public static class ProjectReport
{
    const long MaxInline = 4 * 1024 * 1024;

    public static string Write(string folder)
    {
        var manifest = ResearchProject.Manifest(folder);
        var runs = ResearchProject.Runs(folder);
        var html = new StringBuilder();
        const string Style = "body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}" +
                             "pre,code{font:13px ui-monospace,monospace;background:#f4f4f4}pre{padding:.6em;overflow-x:auto}" +
                             "table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}" +
                             "img{max-width:100%;border:1px solid #ddd}.run{border-top:2px solid #444;margin-top:2em}.meta{color:#666;font-size:13px}" +
                             ".ok{color:#176f2c}.bad{color:#b00020;font-weight:bold}";
        html.Append($"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{E(manifest.Name)}: write-up</title><style>{Style}</style></head><body>");
        html.Append($"<h1>{E(manifest.Name)}</h1><p class=\"meta\">{(manifest.Template is null ? "" : $"template {E(manifest.Template)} · ")}created {manifest.CreatedUtc:yyyy-MM-dd HH:mm} UTC · seed {manifest.Seed} · {runs.Count} run(s)</p>");
        string logPath = Path.Combine(folder, ResearchProject.LogFile);
        // The log's own "# name" title is the page's h1 already.
        string log = File.Exists(logPath) ? File.ReadAllText(logPath) : "";
        if (log.StartsWith("# ", StringComparison.Ordinal)) log = log[(log.IndexOf('\n') is var n and >= 0 ? n + 1 : log.Length)..];
        html.Append("<h2>Research log</h2>").Append(Markdown(log));
        foreach (var run in runs)
        {
            html.Append($"<div class=\"run\"><h2>Run {run.Index}: <code>{E(ResearchProject.CommandLine(run.Command))}</code></h2>");
            html.Append($"<p class=\"meta\">{run.StartedUtc:yyyy-MM-dd HH:mm:ss} UTC · exit {run.ExitCode} · {run.WallSeconds:0.0} s · seed {run.Seed} · SharpLens {E(run.SharpLensVersion)}" +
                        $"{(run.GitCommit is null ? "" : $" · commit {E(run.GitCommit)}")} · {E(run.Machine)}</p>");
            if (run.Outputs.Count > 0)
            {
                html.Append(run.Outputs.Count > 12 ? $"<details><summary>{run.Outputs.Count} output files</summary>" : "<details open><summary>output files</summary>");
                html.Append("<table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>");
                foreach (var o in run.Outputs) html.Append($"<tr><td style=\"text-align:left\">{E(o.Path)}</td><td>{o.Bytes}</td><td><code>{o.Sha256[..16]}…</code></td></tr>");
                html.Append("</table></details>");
            }
            // Figures and tables are shown for files at most one folder deep (out/summary.json); deeper ones (checkpoints) are listed only.
            foreach (var o in run.Outputs.Where(o => o.Path.Count(c => c == '/') <= 1)) html.Append(Inline(folder, o));
            string logFile = Path.Combine(folder, run.OutputLog);
            if (File.Exists(logFile)) html.Append("<details><summary>output</summary><pre>").Append(E(Tail(File.ReadAllText(logFile), 12000))).Append("</pre></details>");
            html.Append("</div>");
        }
        var rerun = ResearchProject.LastRerun(folder);
        if (rerun.Count > 0)
        {
            int same = rerun.Count(r => r.Outcome is Reproduction.Identical or Reproduction.SameNumbers), compared = rerun.Count(r => r.Outcome != Reproduction.NotCompared);
            html.Append($"<h2>Re-run</h2><p>The last <code>sharplens project rerun</code> re-made <strong>{same} of {compared}</strong> compared output file(s) " +
                        "(identical bytes, or equal numbers with only timings differing); figures and pages are shown, not compared number by number.</p>");
            html.Append("<table><tr><th>run</th><th>file</th><th>outcome</th><th>detail</th></tr>");
            foreach (var r in rerun)
            {
                string css = r.Outcome is Reproduction.Identical or Reproduction.SameNumbers ? "ok" : r.Outcome == Reproduction.NotCompared ? "meta" : "bad";
                html.Append($"<tr><td>{r.Run}</td><td style=\"text-align:left\">{E(r.Path)}</td><td class=\"{css}\">{r.Outcome}</td><td style=\"text-align:left\">{E(r.Detail)}</td></tr>");
            }
            html.Append("</table>");
        }
        html.Append("<h2>Reproduce</h2><p>From this folder, with the same SharpLens version; <code>sharplens project rerun</code> runs them all and compares every output's hash:</p><pre>");
        foreach (var run in runs) html.Append(E("sharplens project run -- " + ResearchProject.CommandLine(run.Command))).Append('\n');
        html.Append("</pre></body></html>\n");
        string path = Path.Combine(folder, ResearchProject.ReportFile);
        AtomicFile.WriteAllText(path, html.ToString());
        return path;
    }

    static string Inline(string folder, OutputFile o)
    {
        string path = Path.Combine(folder, o.Path);
        if (!File.Exists(path) || o.Bytes > MaxInline) return "";
        string ext = Path.GetExtension(path).ToLowerInvariant();
        string caption = $"<p class=\"meta\">{E(o.Path)}</p>";
        switch (ext)
        {
            case ".png": return $"{caption}<img alt=\"{E(o.Path)}\" src=\"data:image/png;base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\">";
            case ".svg": return $"{caption}<img alt=\"{E(o.Path)}\" src=\"data:image/svg+xml;base64,{Convert.ToBase64String(File.ReadAllBytes(path))}\">"; // as an image: its scripts never run
            case ".csv": case ".tsv": return caption + Table(File.ReadLines(path).Take(60).ToList(), ext == ".csv" ? ',' : '\t');
            case ".json": case ".md": case ".txt": return $"{caption}<pre>{E(Tail(File.ReadAllText(path), 20000))}</pre>";
            case ".npy": return NpyTables(path) is { } tables ? caption + tables : "";
            // A page of its own (e.g. the tour's report), embedded whole: srcdoc keeps the write-up one file, and an empty
            // sandbox means nothing in it runs, whatever wrote it.
            case ".html": return $"{caption}<iframe sandbox=\"\" title=\"{E(o.Path)}\" srcdoc=\"{E(File.ReadAllText(path))}\" style=\"width:100%;height:640px;border:1px solid #ddd\"></iframe>";
            default: return "";
        }
    }

    /// <summary>A small .npy (at most 3 axes, 4096 numbers) as tables: one per index of the first axis when it has three.</summary>
    static string? NpyTables(string path)
    {
        using var scope = TorchSharp.torch.NewDisposeScope();
        TorchSharp.torch.Tensor t;
        try { t = SharpLens.Interop.NumpyFiles.LoadNpy(path).to(TorchSharp.torch.ScalarType.Float64); }
        catch (SharpLensException) { return null; }
        if (t.dim() is < 1 or > 3 || t.numel() > 4096) return $"<p class=\"meta\">[{string.Join(", ", t.shape)}]</p>";
        var blocks = t.dim() == 3 ? Enumerable.Range(0, (int)t.shape[0]).Select(i => t[i]).ToList() : [t.dim() == 1 ? t.unsqueeze(0) : t];
        var sb = new StringBuilder($"<p class=\"meta\">[{string.Join(", ", t.shape)}]{(t.dim() == 3 ? ", one table per index of the first axis; rows: second axis, columns: third" : "")}</p>");
        for (int b = 0; b < blocks.Count; b++)
        {
            var m = blocks[b];
            var rows = new List<string> { string.Join(',', new[] { t.dim() == 3 ? $"[{b}]" : "" }.Concat(Enumerable.Range(0, (int)m.shape[1]).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)))) };
            var values = m.data<double>().ToArray();
            int cols = (int)m.shape[1];
            for (int r = 0; r < m.shape[0]; r++)
                rows.Add(string.Join(',', new[] { r.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(values.Skip(r * cols).Take(cols).Select(v => v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)))));
            sb.Append(Table(rows, ','));
        }
        return sb.ToString();
    }

    static string Table(IReadOnlyList<string> lines, char separator)
    {
        var sb = new StringBuilder("<div style=\"overflow-x:auto\"><table>");
        for (int i = 0; i < lines.Count; i++)
        {
            string cell = i == 0 ? "th" : "td";
            sb.Append("<tr>");
            foreach (var c in lines[i].Split(separator)) sb.Append($"<{cell}>{E(c)}</{cell}>");
            sb.Append("</tr>");
        }
        return sb.Append("</table></div>").ToString();
    }

    /// <summary>Just enough Markdown for a research log: headings, paragraphs, **bold**, `code`, indented code blocks.</summary>
    internal static string Markdown(string text)
    {
        var sb = new StringBuilder();
        var paragraph = new List<string>();
        var code = new List<string>();
        void Flush()
        {
            if (paragraph.Count > 0) { sb.Append("<p>").Append(Inline(string.Join(' ', paragraph))).Append("</p>"); paragraph.Clear(); }
            if (code.Count > 0) { sb.Append("<pre>").Append(E(string.Join('\n', code))).Append("</pre>"); code.Clear(); }
        }
        foreach (var raw in text.Replace("\r\n", "\n").Split('\n'))
        {
            if (raw.StartsWith("    ", StringComparison.Ordinal) && paragraph.Count == 0) { code.Add(raw[4..]); continue; }
            string line = raw.TrimEnd();
            if (line.Length == 0) { Flush(); continue; }
            if (code.Count > 0) Flush();
            int level = line.TakeWhile(c => c == '#').Count();
            if (level is > 0 and <= 6 && line.Length > level && line[level] == ' ')
            {
                Flush();
                int h = Math.Min(6, level + 1); // the page's own h1 is the project's name
                sb.Append($"<h{h}>{Inline(line[(level + 1)..])}</h{h}>");
                continue;
            }
            paragraph.Add(line);
        }
        Flush();
        return sb.ToString();
    }

    static string Inline(string text)
    {
        var s = E(text);
        s = System.Text.RegularExpressions.Regex.Replace(s, @"\*\*(.+?)\*\*", "<strong>$1</strong>");
        return System.Text.RegularExpressions.Regex.Replace(s, "`(.+?)`", "<code>$1</code>");
    }

    static string Tail(string text, int max) => text.Length <= max ? text : "…\n" + text[^max..];
    static string E(string s) => WebUtility.HtmlEncode(s);
}
