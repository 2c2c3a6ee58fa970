using System.Text.Json;

namespace SharpLens.Saes.Data;

/// <summary>How a plain text file is cut into documents.</summary>
public enum TextSplit
{
    /// <summary>The whole file is one document.</summary>
    File,
    /// <summary>Each run of lines between blank lines is one document (line breaks inside it become spaces).</summary>
    Paragraph,
}

/// <summary>
/// Documents (strings) from text on disk, for <see cref="Contexts.FromTexts"/>: plain text files, or JSON Lines with
/// the text in one field. A folder stands for its files in ordinal name order.
/// </summary>
public static class TextSources
{
    /// <summary>Documents of a .txt file, or of every *.txt file in a folder; by default one per paragraph.</summary>
    public static IEnumerable<string> PlainText(string path, TextSplit split = TextSplit.Paragraph)
    {
        foreach (string file in FilesOf(path, "*.txt"))
        {
            if (split == TextSplit.File)
            {
                string text = File.ReadAllText(file);
                if (text.Trim().Length > 0) yield return text;
                continue;
            }
            var paragraph = new List<string>();
            foreach (string line in File.ReadLines(file).Append(""))
            {
                if (line.Trim().Length > 0) { paragraph.Add(line.Trim()); continue; }
                if (paragraph.Count == 0) continue;
                yield return string.Join(' ', paragraph);
                paragraph.Clear();
            }
        }
    }

    /// <summary>The <paramref name="field"/> string of each line of a .jsonl file (or of every *.jsonl in a folder); blank lines are skipped.</summary>
    public static IEnumerable<string> Jsonl(string path, string field = "text")
    {
        foreach (string file in FilesOf(path, "*.jsonl"))
        {
            int lineNumber = 0;
            foreach (string line in File.ReadLines(file))
            {
                lineNumber++;
                if (line.Trim().Length == 0) continue;
                string? text;
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.String)
                        throw new DataSourceException(file, $"line {lineNumber} has no string field '{field}'; name the text field with the field argument.");
                    text = value.GetString();
                }
                catch (JsonException e) { throw new DataSourceException(file, $"line {lineNumber} is not JSON: {e.Message}"); }
                if (!string.IsNullOrEmpty(text)) yield return text;
            }
        }
    }

    static IEnumerable<string> FilesOf(string path, string pattern)
    {
        if (Directory.Exists(path)) return Directory.GetFiles(path, pattern).Order(StringComparer.Ordinal);
        if (File.Exists(path)) return [path];
        throw new DataSourceException(path, "no such file or folder.");
    }
}

/// <summary>A data source (text, JSONL, token file, activation shards) is missing or malformed; <see cref="Path"/> names it.</summary>
public sealed class DataSourceException(string path, string problem) : SharpLensFileException(path, null, $"{path}: {problem}")
{
    public string Path { get; } = path;
}
