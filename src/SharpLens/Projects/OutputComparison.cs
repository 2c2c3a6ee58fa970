using System.Globalization;
using System.Text.Json;
using SharpLens.Interop;
using static TorchSharp.torch;

namespace SharpLens.Projects;

/// <summary>
/// Whether a re-made output carries the same numbers as the recorded one when their bytes differ: JSON value by value
/// (fields that hold timings skipped), CSV/TSV cell by cell, .npy element by element. Numbers are equal within a
/// relative 1e-9 (JSON, CSV) or 1e-6 (float tensors).
/// </summary>
public static class OutputComparison
{
    /// <summary>Field names that hold wall-clock measurements or dates: they differ from run to run by nature.</summary>
    public static bool IsTiming(string field)
    {
        string f = field.ToLowerInvariant();
        return f.Contains("second") || f.Contains("elapsed") || f.Contains("time") || f.Contains("date") || f.EndsWith("_utc", StringComparison.Ordinal)
               || f.Contains("steps_per") || f.Contains("duration");
    }

    public static (Reproduction Outcome, string Detail) Compare(string original, string again)
    {
        switch (Path.GetExtension(original).ToLowerInvariant())
        {
            case ".json":
                try
                {
                    using var a = JsonDocument.Parse(File.ReadAllText(original));
                    using var b = JsonDocument.Parse(File.ReadAllText(again));
                    var skipped = new SortedSet<string>(StringComparer.Ordinal);
                    var folders = (Path.GetDirectoryName(Path.GetFullPath(original))!, Path.GetDirectoryName(Path.GetFullPath(again))!);
                    string? difference = Json(a.RootElement, b.RootElement, "$", skipped, folders, parent: null);
                    return difference is null
                        ? (Reproduction.SameNumbers, skipped.Count == 0 ? "same values, different formatting" : $"same numbers; only timings differ ({string.Join(", ", skipped)})")
                        : (Reproduction.Differs, difference);
                }
                catch (JsonException e) { return (Reproduction.Differs, $"not valid JSON any more: {e.Message}"); }
            case ".csv": return Delimited(original, again, ',');
            case ".tsv": return Delimited(original, again, '\t');
            case ".npy":
                using (NewDisposeScope())
                {
                    var a = NumpyFiles.LoadNpy(original);
                    var b = NumpyFiles.LoadNpy(again);
                    if (!a.shape.SequenceEqual(b.shape)) return (Reproduction.Differs, $"shape [{string.Join(", ", a.shape)}] became [{string.Join(", ", b.shape)}]");
                    if (a.dtype != b.dtype) return (Reproduction.Differs, $"dtype {a.dtype} became {b.dtype}");
                    var x = a.to(ScalarType.Float64);
                    var y = b.to(ScalarType.Float64);
                    double worst = (x - y).abs().max().item<double>();
                    bool close = x.allclose(y, rtol: 1e-6, atol: 1e-9, equal_nan: true);
                    return close ? (Reproduction.SameNumbers, $"equal within 1e-6 (largest difference {worst:0.###e0})")
                                 : (Reproduction.Differs, $"values differ by up to {worst:0.####e0}");
                }
            case ".png" or ".svg" or ".html":
                return (Reproduction.NotCompared, "a figure or page: its bytes differ (pages show wall times); its numbers are compared through the data files");
            default:
                return (Reproduction.Differs, "its bytes differ");
        }
    }

    /// <summary>
    /// A manifest's record of a sibling file ("trainer.json": {"bytes": …, "sha256": …}) changes with that file's
    /// timings: when the sibling itself has the same numbers in both folders, its size and hash are not a difference.
    /// </summary>
    static bool DescribesSameNumbersSibling(string field, string? parent, (string Original, string Again) folders)
    {
        if (parent is null || field is not ("sha256" or "bytes" or "size") || !parent.Contains('.') || parent.Contains('/') || parent.Contains('\\')) return false;
        string x = Path.Combine(folders.Original, parent), y = Path.Combine(folders.Again, parent);
        return File.Exists(x) && File.Exists(y) && Path.GetFullPath(x) != Path.GetFullPath(y) && Compare(x, y).Outcome is Reproduction.SameNumbers or Reproduction.Identical;
    }

    static string? Json(JsonElement a, JsonElement b, string path, SortedSet<string> skipped, (string, string) folders, string? parent)
    {
        if (a.ValueKind != b.ValueKind)
            return (a.ValueKind, b.ValueKind) is (JsonValueKind.True or JsonValueKind.False, JsonValueKind.True or JsonValueKind.False)
                ? $"{path}: {a.GetRawText()} became {b.GetRawText()}"
                : $"{path}: a {a.ValueKind} became a {b.ValueKind}";
        switch (a.ValueKind)
        {
            case JsonValueKind.Object:
                var names = a.EnumerateObject().Select(p => p.Name).Union(b.EnumerateObject().Select(p => p.Name)).ToList();
                foreach (var name in names)
                {
                    if (IsTiming(name)) { skipped.Add(name); continue; }
                    if (DescribesSameNumbersSibling(name, parent, folders)) { skipped.Add($"{parent}'s {name}"); continue; }
                    if (!a.TryGetProperty(name, out var x)) return $"{path}.{name}: new in the re-run";
                    if (!b.TryGetProperty(name, out var y)) return $"{path}.{name}: missing in the re-run";
                    if (Json(x, y, $"{path}.{name}", skipped, folders, name) is { } d) return d;
                }
                return null;
            case JsonValueKind.Array:
                if (a.GetArrayLength() != b.GetArrayLength()) return $"{path}: {a.GetArrayLength()} items became {b.GetArrayLength()}";
                int i = 0;
                foreach (var (x, y) in a.EnumerateArray().Zip(b.EnumerateArray()))
                    if (Json(x, y, $"{path}[{i++}]", skipped, folders, null) is { } d) return d;
                return null;
            case JsonValueKind.Number:
                return Close(a.GetDouble(), b.GetDouble()) ? null : $"{path}: {a.GetRawText()} became {b.GetRawText()}";
            default:
                return a.GetRawText() == b.GetRawText() ? null : $"{path}: {a.GetRawText()} became {b.GetRawText()}";
        }
    }

    static (Reproduction, string) Delimited(string original, string again, char separator)
    {
        var a = File.ReadAllLines(original);
        var b = File.ReadAllLines(again);
        if (a.Length != b.Length) return (Reproduction.Differs, $"{a.Length} lines became {b.Length}");
        var header = a.Length > 0 ? a[0].Split(separator) : [];
        for (int row = 0; row < a.Length; row++)
        {
            var x = a[row].Split(separator);
            var y = b[row].Split(separator);
            if (x.Length != y.Length) return (Reproduction.Differs, $"line {row + 1}: {x.Length} cells became {y.Length}");
            for (int c = 0; c < x.Length; c++)
            {
                if (x[c] == y[c] || (c < header.Length && row > 0 && IsTiming(header[c]))) continue;
                bool numbers = double.TryParse(x[c], NumberStyles.Float, CultureInfo.InvariantCulture, out double u)
                               & double.TryParse(y[c], NumberStyles.Float, CultureInfo.InvariantCulture, out double v);
                if (!numbers || !Close(u, v)) return (Reproduction.Differs, $"line {row + 1}, cell {c + 1}: {x[c]} became {y[c]}");
            }
        }
        return (Reproduction.SameNumbers, "same numbers; only timings or formatting differ");
    }

    static bool Close(double a, double b) => a == b || (double.IsNaN(a) && double.IsNaN(b)) || Math.Abs(a - b) <= 1e-9 * Math.Max(1, Math.Max(Math.Abs(a), Math.Abs(b)));
}
