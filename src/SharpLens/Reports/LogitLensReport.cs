using System.Text.Json;
using SharpLens.Models;
using SharpLens.Techniques;
using static TorchSharp.torch;

namespace SharpLens.Reports;

/// <summary>The logit lens for one target token as one self-contained HTML page.</summary>
public static class LogitLensReport
{
    /// <summary>The target token's rank and probability at the last position, one point per lens row.</summary>
    public static HtmlReport Build(HookedTransformer model, LogitLensResult lens, long token)
    {
        if (token < 0 || token >= model.Config.DVocab)
            throw new ReportArgumentException($"--target-token {token} is outside the vocabulary (0 … {model.Config.DVocab - 1}).");
        long positions = lens.LogProbs.shape[2];
        using var targets = full([1, positions], token, ScalarType.Int64);
        using var ranks = lens.TargetRanks(targets)[.., 0, -1].to(ScalarType.Float64); // [rows]
        using var probs = lens.TargetLogProbs(targets)[.., 0, -1].exp().to(ScalarType.Float64); // [rows]
        var x = Enumerable.Range(0, lens.Rows).Select(r => (double)r).ToList();
        var rank = ranks.data<double>().ToArray();
        var prob = probs.data<double>().ToArray();
        string name = TokenName(model, token);
        var rowNote = string.Join(", ", lens.RowNames.Select((n, i) => $"{i} = {n}"));
        return new HtmlReport($"Logit lens: {name}")
            .Paragraph($"The residual stream before each layer, read through the final norm and the unembedding, at the last position. " +
                       $"Rows: {rowNote}.", "lead")
            .Gallery([
                ("rank of the target (0 = top)", Svg.LinePlot([new Series("rank", x, rank, Svg.Blue)], "lens row (layer)", "rank")),
                ("probability of the target", Svg.LinePlot([new Series("probability", x, prob, Svg.Orange)], "lens row (layer)", "probability", yMin: 0)),
            ])
            .Table(["row", "hook", "rank", "probability"],
                lens.RowNames.Select((n, i) => (IReadOnlyList<string>)[i.ToString(), n, rank[i].ToString("0"), prob[i].ToString("0.0000")]));
    }

    /// <summary>A token as a quoted JSON string of its text ("\" Mary\""), or #id when the model has no tokenizer name.</summary>
    public static string TokenName(HookedTransformer model, long id) =>
        model.Config.TokenizerName is null ? $"#{id}" : $"\"{JsonEncodedText.Encode(model.Tokenizer.ToStrTokens([(int)id])[0])}\"";
}

/// <summary>A report was asked for something its data does not hold (a token outside the vocabulary).</summary>
public sealed class ReportArgumentException(string message) : SharpLensException(message);
