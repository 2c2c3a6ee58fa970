using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpLens.Learn;

/// <summary>
/// A chapter as a .NET Interactive (Polyglot) notebook, from the same template as the file-based app: the opening
/// comment becomes a markdown cell, the package reference and the usings a code cell, and every exercise a markdown
/// cell (its explanation and hints) followed by a code cell (its method, a script-level function); the last cell runs
/// the chapter's check in the kernel's process and writes <c>chapterN.html</c> beside the notebook.
/// </summary>
public static class ChapterNotebook
{
    /// <summary>The notebook's file name for a chapter: chapterN.ipynb.</summary>
    public static string FileName(int number) => Path.ChangeExtension(Chapters.Get(number).FileName, ".ipynb");

    /// <summary>The notebook's JSON (nbformat 4.5, kernel .net-csharp), referencing SharpLens.Cpu <paramref name="packageVersion"/>.</summary>
    public static string Render(int number, ChapterVariant variant, string packageVersion)
    {
        var lines = Chapters.Render(number, variant, "").Split('\n');
        var cells = new JsonArray();
        int i = 0;
        while (i < lines.Length && (lines[i].Trim().Length == 0 || lines[i].StartsWith("#", StringComparison.Ordinal))) i++; // directives

        // The opening comment: the chapter's introduction.
        var intro = new List<string>();
        for (; i < lines.Length && lines[i].StartsWith("//", StringComparison.Ordinal); i++) intro.Add(Uncomment(lines[i]));
        intro = [.. intro.Where(l => !l.Contains("dotnet run chapter", StringComparison.Ordinal) && !l.Contains("sharplens learn check", StringComparison.Ordinal))];
        if (intro.Count > 0) intro[0] = "# " + intro[0];
        intro.Add("");
        intro.Add("Run the cells in order. Each exercise's cell holds a function that throws `NotImplementedException`: fill it in, run the cell again, " +
                  $"then run the last cell, which checks every exercise against SharpLens's own implementation and writes `chapter{number}.html` with your plots.");
        cells.Add((JsonNode)Markdown(intro));

        // The package and the usings.
        // The kernel's own usings are System, System.Collections.Generic, System.Linq, System.Text and
        // System.Threading.Tasks; a file-based app also has System.IO (implicit usings), which the check cell's Path needs.
        var usings = new List<string> { $"#r \"nuget: SharpLens.Cpu, {packageVersion}\"", "using System.IO;" };
        for (; i < lines.Length && !lines[i].StartsWith("return ", StringComparison.Ordinal); i++)
            if (lines[i].StartsWith("using ", StringComparison.Ordinal)) usings.Add(lines[i]);
        cells.Add((JsonNode)Code(usings));

        // The check call, kept for the last cell.
        var check = new List<string>();
        for (; i < lines.Length && !lines[i].StartsWith("static class Exercises", StringComparison.Ordinal); i++) check.Add(lines[i]);
        while (i < lines.Length && lines[i].Trim() != "{") i++;
        i++;

        // The exercises: comment blocks (markdown) and the methods after them (code), one indentation level out.
        var body = new List<string>();
        for (; i < lines.Length; i++)
        {
            if (lines[i] == "}") break;
            body.Add(lines[i].StartsWith("    ", StringComparison.Ordinal) ? lines[i][4..] : lines[i].TrimStart());
        }
        var markdown = new List<string>();
        var code = new List<string>();
        void Flush()
        {
            if (code.Any(l => l.Trim().Length > 0)) cells.Add((JsonNode)Code(Trimmed(code)));
            code.Clear();
        }
        foreach (var line in body)
        {
            if (line.StartsWith("//", StringComparison.Ordinal))
            {
                Flush();
                markdown.Add(Uncomment(line));
                continue;
            }
            if (markdown.Count > 0) { cells.Add((JsonNode)Markdown(Heading(markdown))); markdown.Clear(); }
            code.Add(ScriptLevel(line));
        }
        Flush();

        cells.Add((JsonNode)Markdown(["## Check", "", "Checks every exercise (or name some: `[\"FourierBasis\"]` instead of `[]`) and writes your plots beside the notebook."]));
        cells.Add((JsonNode)Code(CheckCell(check, number)));

        var notebook = new JsonObject
        {
            ["cells"] = cells,
            ["metadata"] = JsonNode.Parse("""{"kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"}, "language_info": {"name": "polyglot-notebook"}, "polyglot_notebook": {"kernelInfo": {"defaultKernelName": "csharp", "items": [{"aliases": [], "name": "csharp"}]}}}"""),
            ["nbformat"] = 4,
            ["nbformat_minor"] = 5,
        };
        return notebook.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";
    }

    /// <summary>Writes the chapter's notebook into <paramref name="folder"/>; an existing one is kept unless <paramref name="overwrite"/>.</summary>
    public static string Write(int number, ChapterVariant variant, string folder, string packageVersion, bool overwrite = false)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, FileName(number));
        if (File.Exists(path) && !overwrite)
            throw new SharpLensArgumentException("--dir", $"{path} already exists (your work?); it was left as it is. Pass --force to overwrite it, or another --dir.");
        IO.AtomicFile.WriteAllText(path, Render(number, variant, packageVersion));
        return path;
    }

    static string Uncomment(string line) => line.StartsWith("// ", StringComparison.Ordinal) ? line[3..] : line.TrimStart('/');

    /// <summary>"── 1. Embed ───" becomes "## 1. Embed".</summary>
    static List<string> Heading(List<string> markdown)
    {
        var result = new List<string>();
        foreach (var line in markdown)
        {
            string trimmed = line.Trim('─', ' ');
            result.Add(line.StartsWith('─') && trimmed.Length > 0 ? "## " + trimmed : line);
            if (line.StartsWith('─')) result.Add("");
        }
        return result;
    }

    /// <summary>A method of the app's static class as a script-level function: no <c>public</c>/<c>static</c> at its start.</summary>
    static string ScriptLevel(string line)
    {
        if (line.Length == 0 || char.IsWhiteSpace(line[0])) return line;
        foreach (var prefix in new[] { "public static ", "private static ", "internal static ", "static " })
            if (line.StartsWith(prefix, StringComparison.Ordinal)) return line[prefix.Length..];
        return line;
    }

    static List<string> CheckCell(List<string> check, int number)
    {
        var text = string.Join('\n', Trimmed(check));
        text = text.Replace("return ", "", StringComparison.Ordinal).Replace("(args,", "([],", StringComparison.Ordinal).Replace(" = Exercises.", " = ", StringComparison.Ordinal);
        int end = text.LastIndexOf("});", StringComparison.Ordinal);
        if (end < 0) throw new SharpLensInternalException($"Chapter {number}'s template does not end its check call with '}});'.");
        text = text[..end] + $"}}, file: Path.GetFullPath(\"chapter{number}.ipynb\"));";
        return ["Checker.InProcess = true; // a notebook checks in the kernel's own process", .. text.Split('\n')];
    }

    static List<string> Trimmed(List<string> lines)
    {
        int start = 0, end = lines.Count;
        while (start < end && lines[start].Trim().Length == 0) start++;
        while (end > start && lines[end - 1].Trim().Length == 0) end--;
        return lines.GetRange(start, end - start);
    }

    static JsonObject Markdown(IEnumerable<string> lines) => new()
    {
        ["cell_type"] = "markdown",
        ["metadata"] = new JsonObject(),
        ["source"] = Source(lines),
    };

    static JsonObject Code(IEnumerable<string> lines) => new()
    {
        ["cell_type"] = "code",
        ["execution_count"] = null,
        ["metadata"] = JsonNode.Parse("""{"dotnet_interactive": {"language": "csharp"}, "polyglot_notebook": {"kernelName": "csharp"}}"""),
        ["outputs"] = new JsonArray(),
        ["source"] = Source(lines),
    };

    /// <summary>nbformat's source: a list of lines, each but the last ending in a newline.</summary>
    static JsonArray Source(IEnumerable<string> lines)
    {
        var list = lines.ToList();
        var array = new JsonArray();
        for (int k = 0; k < list.Count; k++) array.Add((JsonNode?)JsonValue.Create(k < list.Count - 1 ? list[k] + "\n" : list[k]));
        return array;
    }
}
