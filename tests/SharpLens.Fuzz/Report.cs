using System.Text;

namespace SharpLens.Fuzz;

/// <summary>The counts the README quotes: per format and per class of input, and every defect found.</summary>
public static class Report
{
    static readonly Outcome[] Outcomes = Enum.GetValues<Outcome>();

    public static string Markdown(Corpus corpus, IReadOnlyList<CaseResult> results, int from, int cases)
    {
        var text = new StringBuilder();
        var real = results.Where(r => r.Class != "seed").ToList();
        text.AppendLine($"Fuzz corpus cases {from}…{from + cases - 1}: {real.Select(r => r.Index).Distinct().Count()} cases, {real.Count} runs " +
                        $"({real.Count(r => r.Mode == "library")} through the library, {real.Count(r => r.Mode == "cli")} through the CLI).");
        text.AppendLine();
        text.AppendLine("| format | mode | runs | structured | mutations | " + string.Join(" | ", Outcomes.Select(Label)) + " |");
        text.AppendLine("|---|---|---:|---:|---:|" + string.Concat(Outcomes.Select(_ => "---:|")));
        foreach (var group in real.GroupBy(r => (r.Format, r.Mode)).OrderBy(g => g.Key.Format).ThenBy(g => g.Key.Mode))
        {
            text.Append($"| {group.Key.Format} | {group.Key.Mode} | {group.Count()} | {group.Count(r => !r.Class.StartsWith("mutation"))} | {group.Count(r => r.Class.StartsWith("mutation"))} |");
            foreach (var o in Outcomes) text.Append($" {group.Count(r => r.Outcome == o)} |");
            text.AppendLine();
        }
        text.Append("| **all** | | " + real.Count + " | " + real.Count(r => !r.Class.StartsWith("mutation")) + " | " + real.Count(r => r.Class.StartsWith("mutation")) + " |");
        foreach (var o in Outcomes) text.Append($" {real.Count(r => r.Outcome == o)} |");
        text.AppendLine();
        text.AppendLine();
        text.AppendLine("| class | runs | " + string.Join(" | ", Outcomes.Select(Label)) + " |");
        text.AppendLine("|---|---:|" + string.Concat(Outcomes.Select(_ => "---:|")));
        foreach (var group in real.GroupBy(r => r.Class).OrderBy(g => g.Key))
        {
            text.Append($"| {group.Key} | {group.Count()} |");
            foreach (var o in Outcomes) text.Append($" {group.Count(r => r.Outcome == o)} |");
            text.AppendLine();
        }
        var defects = results.Where(r => r.Outcome is not (Outcome.Accepted or Outcome.Refused) && r.Class != "seed").ToList();
        text.AppendLine();
        text.AppendLine(defects.Count == 0 ? "No defects." : $"{defects.Count} defects:");
        foreach (var d in defects.Take(200)) text.AppendLine($"- {d.Mode} case {d.Index} ({d.Format}, {d.Class}) {d.Outcome}: {d.Detail}");
        foreach (var s in results.Where(r => r.Class == "seed" && r.Outcome != Outcome.Accepted)) text.AppendLine($"- seed of {s.Format} ({s.Mode}) not accepted: {s.Detail}");
        return text.ToString();
    }

    static string Label(Outcome o) => o switch
    {
        Outcome.RefusedUnnamed => "refused, unnamed",
        Outcome.OutOfMemory => "OOM",
        Outcome.CodeExecuted => "code run",
        _ => o.ToString().ToLowerInvariant(),
    };
}
