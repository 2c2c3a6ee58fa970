namespace SharpLens.Attribution;

/// <summary>
/// The few keys of circuit-tracer's <c>config.yaml</c> a transcoder folder needs, read by a deliberately tiny YAML
/// reader: top-level <c>key: value</c> scalars (plain, 'single' or "double" quoted) and <c>key:</c> followed by a
/// block list of <c>- item</c> lines; <c>#</c> starts a comment. Nothing in the file is evaluated (no tags, anchors
/// or flow collections); anything else is an error naming the line.
/// </summary>
public sealed class TranscoderConfigYaml
{
    public required string Path { get; init; }
    public IReadOnlyDictionary<string, string> Scalars { get; init; } = new Dictionary<string, string>();
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Lists { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    public string? Get(string key) => Scalars.TryGetValue(key, out var v) ? v : null;

    public string Require(string key) => Get(key) ?? throw new TranscoderFileException(Path, key,
        $"is missing: circuit-tracer's config.yaml needs model_kind (transcoder_set | cross_layer_transcoder), feature_input_hook and feature_output_hook.");

    public static TranscoderConfigYaml Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new TranscoderFileException(path, null, "does not exist: a transcoder folder needs a config.yaml (model_kind, feature_input_hook, feature_output_hook).");
        if (info.Length > 1 << 20) throw new TranscoderFileException(path, null, $"is {info.Length} bytes; a config.yaml is a few hundred. Is this the right file?");
        var scalars = new Dictionary<string, string>();
        var lists = new Dictionary<string, IReadOnlyList<string>>();
        List<string>? open = null;
        int lineNo = 0;
        foreach (var raw in File.ReadAllLines(path))
        {
            lineNo++;
            string line = StripComment(raw).TrimEnd();
            if (line.Trim().Length == 0 || line.Trim() == "---") continue;
            string trimmed = line.TrimStart();
            if (trimmed.StartsWith("- ", StringComparison.Ordinal) || trimmed == "-")
            {
                if (open is null) throw Bad(path, lineNo, "a list item outside a list");
                open.Add(Unquote(trimmed[1..].Trim(), path, lineNo));
                continue;
            }
            if (line.Length != trimmed.Length) throw Bad(path, lineNo, "an indented mapping (only top-level keys are read)");
            int colon = line.IndexOf(':');
            if (colon <= 0) throw Bad(path, lineNo, "a line that is not 'key: value'");
            string key = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (value.Length == 0) { open = []; lists[key] = open; continue; }
            open = null;
            if (value.StartsWith('[') || value.StartsWith('{') || value.StartsWith('&') || value.StartsWith('*') || value.StartsWith('!') || value.StartsWith('|') || value.StartsWith('>'))
            {
                if (value == "[]") { lists[key] = []; continue; }
                throw Bad(path, lineNo, $"a YAML construct ('{value[0]}') this reader does not accept; write {key} as a plain value or a block list");
            }
            scalars[key] = Unquote(value, path, lineNo);
        }
        return new TranscoderConfigYaml { Path = path, Scalars = scalars, Lists = lists };
    }

    static string StripComment(string line)
    {
        bool single = false, dbl = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (c == '\'' && !dbl) single = !single;
            else if (c == '"' && !single) dbl = !dbl;
            else if (c == '#' && !single && !dbl && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i];
        }
        return line;
    }

    static string Unquote(string value, string path, int line)
    {
        if (value.Length >= 2 && ((value[0] == '"' && value[^1] == '"') || (value[0] == '\'' && value[^1] == '\'')))
            return value[0] == '\'' ? value[1..^1].Replace("''", "'") : value[1..^1].Replace("\\\"", "\"").Replace("\\\\", "\\");
        if (value.StartsWith('"') || value.StartsWith('\'')) throw Bad(path, line, "an unterminated quoted string");
        return value;
    }

    static TranscoderFileException Bad(string path, int line, string what) =>
        new(path, null, $"line {line} has {what}.");

    /// <summary>Writes a config.yaml with these scalars (and lists), quoting every string value.</summary>
    public static string Format(IEnumerable<(string Key, string Value)> scalars, IEnumerable<(string Key, IReadOnlyList<string> Items)>? lists = null)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var (k, v) in scalars) sb.Append(k).Append(": ").Append(Quote(v)).Append('\n');
        foreach (var (k, items) in lists ?? [])
        {
            sb.Append(k).Append(":\n");
            foreach (var item in items) sb.Append("- ").Append(Quote(item)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Plain when YAML reads it back as the same string (or as the integer it spells), else single-quoted.</summary>
    static string Quote(string v) =>
        v.Length > 0 && (v.All(char.IsAsciiDigit) || (v.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '/') && char.IsAsciiLetter(v[0]) && v is not ("true" or "false" or "null" or "yes" or "no")))
            ? v : "'" + v.Replace("'", "''") + "'";
}
