using System.Globalization;
using System.Text;

namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>Jinja's undefined: what a missing variable, key or attribute gives; falsy, prints as nothing.</summary>
sealed class JinjaUndefined
{
    public static readonly JinjaUndefined Value = new();
    public override string ToString() => "";
}

/// <summary>A mapping (messages, namespace(), loop): insertion-ordered, string keys.</summary>
sealed class JinjaDict : Dictionary<string, object?>
{
    readonly List<string> _order = [];
    public new object? this[string key]
    {
        get => TryGetValue(key, out var v) ? v : JinjaUndefined.Value;
        set { if (!ContainsKey(key)) _order.Add(key); base[key] = value; }
    }
    public IEnumerable<string> OrderedKeys => _order;
}

delegate object? JinjaFunction(List<object?> args, Dictionary<string, object?> kwargs);

/// <summary>Variables, innermost first: a for loop's body gets its own scope, as in Jinja.</summary>
sealed class JinjaScope(JinjaScope? parent)
{
    readonly Dictionary<string, object?> _vars = [];
    public object? Lookup(string name) =>
        _vars.TryGetValue(name, out var v) ? v : parent is not null ? parent.Lookup(name) : JinjaUndefined.Value;
    public void Set(string name, object? value) => _vars[name] = value;
}

/// <summary>Python's and Jinja's rules for truth, equality, order, text and JSON of template values.</summary>
static class JinjaValues
{
    public static bool Truthy(object? v) => v switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        JinjaDict d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "none",
        JinjaUndefined => "undefined",
        bool => "a boolean",
        long => "an integer",
        double => "a float",
        string => "a string",
        List<object?> => "a list",
        JinjaDict => "a mapping",
        _ => v.GetType().Name,
    };

    public static double Number(object? v, string op) => v switch
    {
        long l => l,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new ChatTemplateException($"chat_template uses {TypeName(v)} as a number (in '{op}')."),
    };

    public static bool Equal(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (JinjaUndefined, JinjaUndefined) => true,
        (string x, string y) => x == y,
        (long or double or bool, long or double or bool) => Number(a, "==") == Number(b, "=="),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
        _ => ReferenceEquals(a, b),
    };

    public static int Compare(object? a, object? b) => (a, b) switch
    {
        (string x, string y) => string.CompareOrdinal(x, y),
        (long or double or bool, long or double or bool) => Number(a, "<").CompareTo(Number(b, "<")),
        _ => throw new ChatTemplateException($"chat_template compares {TypeName(a)} with {TypeName(b)}."),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s => item is string t ? s.Contains(t, StringComparison.Ordinal) : throw new ChatTemplateException($"chat_template asks whether {TypeName(item)} is in a string."),
        List<object?> l => l.Any(x => Equal(x, item)),
        JinjaDict d => item is string k && d.ContainsKey(k),
        null or JinjaUndefined => false,
        _ => throw new ChatTemplateException($"chat_template uses 'in' on {TypeName(container)}."),
    };

    /// <summary>The text of a value as Jinja prints it (Python's str()).</summary>
    public static string Str(object? v) => v switch
    {
        null => "None",
        JinjaUndefined => "",
        string s => s,
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d == Math.Floor(d) && Math.Abs(d) < 1e16 ? d.ToString("0.0", CultureInfo.InvariantCulture) : d.ToString("R", CultureInfo.InvariantCulture),
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        JinjaDict d => "{" + string.Join(", ", d.OrderedKeys.Select(k => $"{Repr(k)}: {Repr(d[k])}")) + "}",
        _ => v.ToString() ?? "",
    };

    static string Repr(object? v) => v is string s ? "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'" : Str(v);

    /// <summary>JSON as Python's json.dumps writes it (transformers' tojson: ensure_ascii false, ", " and ": " separators).</summary>
    public static string Json(object? v, int? indent = null, int depth = 0)
    {
        string Pad(int d) => indent is int n ? "\n" + new string(' ', n * d) : "";
        string itemSep = indent is null ? ", " : ",";
        switch (v)
        {
            case null or JinjaUndefined: return "null";
            case bool b: return b ? "true" : "false";
            case long or double: return Str(v);
            case string s:
                var sb = new StringBuilder("\"");
                foreach (char c in s)
                    sb.Append(c switch
                    {
                        '"' => "\\\"", '\\' => "\\\\", '\n' => "\\n", '\r' => "\\r", '\t' => "\\t", '\b' => "\\b", '\f' => "\\f",
                        < ' ' => $"\\u{(int)c:x4}",
                        _ => c.ToString(),
                    });
                return sb.Append('"').ToString();
            case List<object?> l:
                if (l.Count == 0) return "[]";
                return "[" + string.Join(itemSep, l.Select(x => Pad(depth + 1) + Json(x, indent, depth + 1))) + Pad(depth) + "]";
            case JinjaDict d:
                if (d.Count == 0) return "{}";
                return "{" + string.Join(itemSep, d.OrderedKeys.Select(k => Pad(depth + 1) + Json(k) + ": " + Json(d[k], indent, depth + 1))) + Pad(depth) + "}";
            default: throw new ChatTemplateException($"chat_template turns {TypeName(v)} into JSON.");
        }
    }

    public static object? GetAttr(object? target, string attr) => target switch
    {
        JinjaDict d => d[attr],
        _ => JinjaUndefined.Value,
    };

    public static object? GetItem(object? target, object? index) => (target, index) switch
    {
        (JinjaDict d, string k) => d[k],
        (List<object?> l, long i) => i < -l.Count || i >= l.Count ? JinjaUndefined.Value : l[(int)(i < 0 ? i + l.Count : i)],
        (string s, long i) => i < -s.Length || i >= s.Length ? JinjaUndefined.Value : s[(int)(i < 0 ? i + s.Length : i)].ToString(),
        (null or JinjaUndefined, _) => JinjaUndefined.Value,
        _ => throw new ChatTemplateException($"chat_template indexes {TypeName(target)} with {TypeName(index)}."),
    };

    /// <summary>Python slicing [start:stop:step] of a list or string.</summary>
    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        long Int(object? v, long fallback) => v is null or JinjaUndefined ? fallback : v is long l ? l : throw new ChatTemplateException($"chat_template slices with {TypeName(v)}.");
        int count = target switch { List<object?> l => l.Count, string s => s.Length, _ => throw new ChatTemplateException($"chat_template slices {TypeName(target)}.") };
        long st = Int(step, 1);
        if (st == 0) throw new ChatTemplateException("chat_template slices with step 0.");
        long Norm(long i, long low, long high) => i < 0 ? Math.Max(i + count, low) : Math.Min(i, high);
        var picked = new List<int>();
        if (st > 0)
            for (long i = Norm(Int(start, 0), 0, count), e = Norm(Int(stop, count), 0, count); i < e; i += st) picked.Add((int)i);
        else
            for (long i = start is null or JinjaUndefined ? count - 1 : Norm(Int(start, 0), -1, count - 1), e = stop is null or JinjaUndefined ? -1 : Norm(Int(stop, 0), -1, count - 1); i > e; i += st) picked.Add((int)i);
        return target is string str ? string.Concat(picked.Select(i => str[i])) : picked.Select(i => ((List<object?>)target!)[i]).ToList();
    }

    /// <summary>A .NET value (from JSON messages) as a template value.</summary>
    public static object? From(System.Text.Json.Nodes.JsonNode? node) => node switch
    {
        null => null,
        System.Text.Json.Nodes.JsonObject o => o.Aggregate(new JinjaDict(), (d, kv) => { d[kv.Key] = From(kv.Value); return d; }),
        System.Text.Json.Nodes.JsonArray a => a.Select(From).ToList(),
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue<bool>(out var b) => b,
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue<long>(out var l) => l,
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue<double>(out var d) => d,
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => node.ToJsonString(),
    };
}
