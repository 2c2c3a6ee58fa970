using System.Text;
using SharpLens.Models;
using SharpLens.Reports;
using SharpLens.Techniques;
using static SharpLens.Interactive.Inline;

namespace SharpLens.Interactive;

/// <summary>
/// The logit lens as a table: one row per lens row (the residual stream before each layer, then the model's output),
/// one column per position, each cell the most probable token there and its probability, shaded by that probability.
/// With a model that has a tokenizer, tokens are shown as text; otherwise as #id.
/// </summary>
public sealed record LogitLensView(LogitLensResult Lens, HookedTransformer? Model = null, int Batch = 0, int MaxPositions = 16)
{
    public string ToHtml()
    {
        int positions = (int)Lens.LogProbs.shape[2];
        int first = Math.Max(0, positions - MaxPositions);
        var html = new StringBuilder("<table class=\"sl-table sl-lens\"><thead><tr><th>row</th>");
        for (int p = first; p < positions; p++) html.Append($"<th>pos {p}</th>");
        html.Append("</tr></thead><tbody>");
        for (int r = 0; r < Lens.Rows; r++)
        {
            html.Append($"<tr><td>{r} <small>{E(Lens.RowNames[r])}</small></td>");
            for (int p = first; p < positions; p++)
            {
                var top = Lens.TopTokens(r, p, k: 1, batch: Batch)[0];
                string ink = top.Probability > 0.55 ? "#fff" : "#0f172a";
                html.Append($"<td style=\"background:{Blue(top.Probability)};color:{ink}\" title=\"row {r}, position {p}: p = {F(top.Probability, "0.0000")}\">" +
                            $"{E(Token(top.Token))}<small>{F(top.Probability, "0.00")}</small></td>");
            }
            html.Append("</tr>");
        }
        html.Append("</tbody></table>");
        string note = first > 0 ? $"The last {MaxPositions} of {positions} positions. " : "";
        return Fragment($"Logit lens: top token per layer and position (sequence {Batch})",
            html + $"<div class=\"sl-note\">{note}Row l reads blocks.l.hook_resid_pre through the final norm and the unembedding; the last row is the model's output.</div>");
    }

    string Token(int id) => Model is null ? $"#{id}" : LogitLensReport.TokenName(Model, id);
}
