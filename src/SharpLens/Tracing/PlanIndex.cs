using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// NumPy basic indexing as text, the form plans carry: <c>"[:, -1]"</c>, <c>"[0, 2:5, ..., ::2]"</c>. Elements are
/// ints (negative counts from the end), slices start:stop:step (each part optional) and one <c>...</c>.
/// </summary>
public sealed class PlanIndex
{
    readonly IReadOnlyList<Part> _parts;

    PlanIndex(IReadOnlyList<Part> parts) => _parts = parts;

    public readonly record struct Part(long? Int, long? Start, long? Stop, long? Step, bool Ellipsis);

    public IReadOnlyList<Part> Parts => _parts;

    /// <summary>Parses <paramref name="text"/>; <paramref name="where"/> names the field in the error.</summary>
    public static PlanIndex Parse(string text, string where)
    {
        var body = text.Trim();
        if (body.StartsWith('[') && body.EndsWith(']')) body = body[1..^1];
        if (body.Trim().Length == 0) return new PlanIndex([]);
        var parts = new List<Part>();
        foreach (var raw in body.Split(','))
        {
            var item = raw.Trim();
            if (item == "...")
            {
                if (parts.Any(p => p.Ellipsis)) throw Bad(text, where, "has more than one '...'");
                parts.Add(new Part(null, null, null, null, true));
                continue;
            }
            if (!item.Contains(':'))
            {
                parts.Add(new Part(ParseInt(item, text, where), null, null, null, false));
                continue;
            }
            var pieces = item.Split(':');
            if (pieces.Length > 3) throw Bad(text, where, $"slice '{item}' has more than two ':'");
            long? At(int i) => i < pieces.Length && pieces[i].Trim().Length > 0 ? ParseInt(pieces[i].Trim(), text, where) : null;
            var step = At(2);
            if (step is <= 0) throw Bad(text, where, $"slice '{item}' has step {step}; steps must be positive");
            parts.Add(new Part(null, At(0), At(1), step, false));
        }
        if (parts.Count > 16) throw Bad(text, where, "has more than 16 elements");
        return new PlanIndex(parts);
    }

    static long ParseInt(string s, string text, string where) =>
        long.TryParse(s, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v : throw Bad(text, where, $"'{s}' is not an integer, a slice (a:b:c) or '...'");

    static PlanValidationException Bad(string text, string where, string what) =>
        new($"{where}: the index \"{text}\" {what}. Write NumPy basic indexing, e.g. \"[:, -1]\" or \"[0, 2:5, ...]\".");

    /// <summary>The index as TorchSharp indexes.</summary>
    public TensorIndex[] ToTensorIndices() => [.. _parts.Select(p =>
        p.Ellipsis ? TensorIndex.Ellipsis
        : p.Int is long i ? TensorIndex.Single(i)
        : TensorIndex.Slice(p.Start, p.Stop, p.Step))];

    /// <summary>The dimensions this index addresses (ints and slices; '...' none).</summary>
    public int Rank => _parts.Count(p => !p.Ellipsis);

    public bool IsEmpty => _parts.Count == 0;

    public override string ToString() => "[" + string.Join(", ", _parts.Select(p =>
        p.Ellipsis ? "..." : p.Int is long i ? i.ToString(System.Globalization.CultureInfo.InvariantCulture)
        : $"{p.Start}:{p.Stop}{(p.Step is long s ? $":{s}" : "")}")) + "]";
}
