using System.Text;
using TorchSharp;
using static TorchSharp.torch;
using static SharpLens.Interactive.Inline;

namespace SharpLens.Interactive;

/// <summary>
/// A tensor as its shape, dtype and device, a few statistics, and a small table of its values: all of a scalar or a
/// short vector, the top-left corner of a matrix, and for more dimensions the corner of the first [.., .., row, column]
/// slice (named). Only the cells shown are copied off the tensor, so a huge tensor displays as fast as a small one.
/// </summary>
public static class TensorHtml
{
    public const int MaxRows = 12, MaxColumns = 12, MaxVector = 16;

    public static string Render(Tensor tensor)
    {
        if (tensor.IsInvalid) return Fragment("tensor (disposed)", "<div class=\"sl-note\">This tensor has been disposed.</div>");
        using var scope = NewDisposeScope();
        var t = tensor.detach();
        string shape = ShapeText.Of(t.shape);
        var title = $"tensor {shape} {t.dtype.ToString().ToLowerInvariant()} on {t.device}" + (tensor.requires_grad ? ", requires grad" : "");
        var body = new StringBuilder();
        bool numeric = t.dtype is not (ScalarType.ComplexFloat32 or ScalarType.ComplexFloat64);
        if (numeric && t.NumberOfElements > 0)
        {
            var all = t.to(ScalarType.Float64);
            body.Append(Figures([("elements", t.NumberOfElements.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)),
                ("min", F(all.min().item<double>(), "0.####")), ("max", F(all.max().item<double>(), "0.####")),
                ("mean", F(all.mean().item<double>(), "0.####"))]));
        }
        if (!numeric) body.Append("<div class=\"sl-note\">complex values: see ToString()</div>");
        else if (t.NumberOfElements == 0) body.Append("<div class=\"sl-note\">no elements</div>");
        else body.Append(Values(t));
        return Fragment(title, body.ToString());
    }

    static string Values(Tensor t)
    {
        if (t.dim() == 0) return $"<div class=\"sl-value\">{E(Cell(t.to(ScalarType.Float64).item<double>(), t.dtype))}</div>";
        if (t.dim() == 1)
        {
            long n = Math.Min(t.shape[0], MaxVector);
            var v = t[..(int)n].to(ScalarType.Float64).cpu().data<double>().ToArray();
            var headers = Enumerable.Range(0, (int)n).Select(i => i.ToString()).Append(t.shape[0] > n ? "…" : null).OfType<string>().ToList();
            var cells = v.Select(x => Cell(x, t.dtype)).Append(t.shape[0] > n ? $"{t.shape[0] - n} more" : null).OfType<string>().ToList();
            return Table(headers, [cells]);
        }
        // The first [.., .., row, column] slice of three or more dimensions.
        var slice = t;
        string name = "";
        if (t.dim() > 2)
        {
            var lead = Enumerable.Repeat(TensorIndex.Single(0), (int)t.dim() - 2).Append(TensorIndex.Colon).Append(TensorIndex.Colon).ToArray();
            slice = t[lead];
            name = $"<div class=\"sl-note\">t[{string.Join(", ", Enumerable.Repeat("0", (int)t.dim() - 2))}, :, :]</div>";
        }
        long rows = Math.Min(slice.shape[0], MaxRows), cols = Math.Min(slice.shape[1], MaxColumns);
        var corner = slice[..(int)rows, ..(int)cols].to(ScalarType.Float64).cpu().data<double>().ToArray();
        var header = new List<string> { "" };
        header.AddRange(Enumerable.Range(0, (int)cols).Select(c => c.ToString()));
        if (slice.shape[1] > cols) header.Add($"… {slice.shape[1] - cols} more");
        var table = new List<IReadOnlyList<string>>();
        for (int r = 0; r < rows; r++)
            table.Add([r.ToString(), .. Enumerable.Range(0, (int)cols).Select(c => Cell(corner[r * cols + c], t.dtype)), .. (slice.shape[1] > cols ? new[] { "" } : [])]);
        if (slice.shape[0] > rows) table.Add([$"… {slice.shape[0] - rows} more"]);
        return name + Table(header, table);
    }

    static string Cell(double v, ScalarType dtype) => dtype switch
    {
        ScalarType.Bool => v != 0 ? "true" : "false",
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Int16 or ScalarType.Int32 or ScalarType.Int64 => F(v, "0"),
        _ => F(v, "0.####"),
    };
}
