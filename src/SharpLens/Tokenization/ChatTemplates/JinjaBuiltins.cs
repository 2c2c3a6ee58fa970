using System.Globalization;

namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>The filters, tests and methods chat templates use; anything else is refused by name.</summary>
static class JinjaBuiltins
{
    static ChatTemplateException Unsupported(string what, string name, string have) =>
        new($"chat_template uses the {what} '{name}', which SharpLens's Jinja subset does not have (it has {have}). The template is refused rather than rendered differently from transformers.");

    const string Filters = "trim, length, count, tojson, string, upper, lower, capitalize, title, first, last, join, default, list, items, reverse, safe, int, float, abs, replace, unique";

    public static object? ApplyFilter(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string key, object? fallback) => i < args.Count ? args[i] : kwargs.TryGetValue(key, out var v) ? v : fallback;
        switch (name)
        {
            case "trim": return Str(value, name).Trim(Arg(0, "chars", null) is string chars ? chars.ToCharArray() : null);
            case "length" or "count": return (long)(value switch { string s => s.Length, List<object?> l => l.Count, JinjaDict map => map.Count, _ => throw new ChatTemplateException($"chat_template takes the length of {JinjaValues.TypeName(value)}.") });
            case "tojson": return JinjaValues.Json(value, Arg(0, "indent", null) is long n ? (int)n : null);
            case "string": return JinjaValues.Str(value);
            case "upper": return Str(value, name).ToUpperInvariant();
            case "lower": return Str(value, name).ToLowerInvariant();
            case "capitalize": { var s = Str(value, name); return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(); }
            case "title": return CultureInfo.InvariantCulture.TextInfo.ToTitleCase(Str(value, name).ToLowerInvariant());
            case "first": return value switch { List<object?> l => l.Count > 0 ? l[0] : JinjaUndefined.Value, string s => s.Length > 0 ? s[..1] : JinjaUndefined.Value, _ => JinjaUndefined.Value };
            case "last": return value switch { List<object?> l => l.Count > 0 ? l[^1] : JinjaUndefined.Value, string s => s.Length > 0 ? s[^1..] : JinjaUndefined.Value, _ => JinjaUndefined.Value };
            case "join": return string.Join(Arg(0, "d", "") as string ?? "", Items(value, name).Select(JinjaValues.Str));
            case "default" or "d":
                bool boolean = JinjaValues.Truthy(Arg(1, "boolean", false));
                return value is JinjaUndefined || (boolean && !JinjaValues.Truthy(value)) ? Arg(0, "default_value", "") : value;
            case "list": return Items(value, name).ToList();
            case "items": return value is JinjaDict d ? d.OrderedKeys.Select(k => (object?)new List<object?> { k, d[k] }).ToList() : throw new ChatTemplateException("chat_template applies |items to something that is not a mapping.");
            case "reverse": return value is string rs ? new string(rs.Reverse().ToArray()) : Items(value, name).Reverse().ToList();
            case "safe": return value;
            case "int": return value switch { long l => l, double f => (long)f, string s when long.TryParse(s.Trim(), CultureInfo.InvariantCulture, out var p) => p, _ => Arg(0, "default", 0L) };
            case "float": return value switch { long l => (double)l, double f => f, string s when double.TryParse(s.Trim(), CultureInfo.InvariantCulture, out var p) => p, _ => Arg(0, "default", 0.0) };
            case "abs": return value is long al ? (object)Math.Abs(al) : Math.Abs(JinjaValues.Number(value, "abs"));
            case "replace": return Str(value, name).Replace(Str(Arg(0, "old", ""), name), Str(Arg(1, "new", ""), name), StringComparison.Ordinal);
            case "unique": return Items(value, name).Aggregate(new List<object?>(), (acc, x) => { if (!acc.Any(y => JinjaValues.Equal(x, y))) acc.Add(x); return acc; });
            default: throw Unsupported("filter", name, Filters);
        }
    }

    static string Str(object? v, string where) => v switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.Str(v),
    };

    static IEnumerable<object?> Items(object? v, string where) => v switch
    {
        List<object?> l => l,
        string s => s.Select(c => (object?)c.ToString()),
        JinjaDict d => d.OrderedKeys.Select(k => (object?)k),
        null or JinjaUndefined => [],
        _ => throw new ChatTemplateException($"chat_template applies |{where} to {JinjaValues.TypeName(v)}."),
    };

    public static bool ApplyTest(string name, Expr target, JinjaScope scope, List<object?> args)
    {
        var v = target.Evaluate(scope);
        return name switch
        {
            "defined" => v is not JinjaUndefined,
            "undefined" => v is JinjaUndefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is JinjaDict,
            "sequence" or "iterable" => v is List<object?> or string or JinjaDict,
            "even" => v is long e && e % 2 == 0,
            "odd" => v is long o && o % 2 != 0,
            "divisibleby" => v is long a && args.Count == 1 && args[0] is long b && b != 0 && a % b == 0,
            "equalto" or "eq" or "==" => args.Count == 1 && JinjaValues.Equal(v, args[0]),
            "in" => args.Count == 1 && JinjaValues.Contains(args[0], v),
            _ => throw Unsupported("test", name, "defined, undefined, none, string, number, integer, float, boolean, true, false, mapping, sequence, iterable, even, odd, divisibleby, equalto, in"),
        };
    }

    public static object? CallMethod(object? self, string method, List<object?> args, Dictionary<string, object?> kwargs)
    {
        string? Chars(int i) => i < args.Count && args[i] is string text ? text : null;
        if (self is string s)
        {
            switch (method)
            {
                case "strip": return Chars(0) is { } c1 ? s.Trim(c1.ToCharArray()) : s.Trim();
                case "lstrip": return Chars(0) is { } c2 ? s.TrimStart(c2.ToCharArray()) : s.TrimStart();
                case "rstrip": return Chars(0) is { } c3 ? s.TrimEnd(c3.ToCharArray()) : s.TrimEnd();
                case "upper": return s.ToUpperInvariant();
                case "lower": return s.ToLowerInvariant();
                case "title": return CultureInfo.InvariantCulture.TextInfo.ToTitleCase(s.ToLowerInvariant());
                case "capitalize": return s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();
                case "startswith": return Affixes(args).Any(a => s.StartsWith(a, StringComparison.Ordinal));
                case "endswith": return Affixes(args).Any(a => s.EndsWith(a, StringComparison.Ordinal));
                case "replace": return s.Replace(JinjaValues.Str(args[0]), JinjaValues.Str(args[1]), StringComparison.Ordinal);
                case "split":
                {
                    string? sep = Chars(0);
                    long max = args.Count > 1 && args[1] is long m ? m : kwargs.TryGetValue("maxsplit", out var mk) && mk is long m2 ? m2 : -1;
                    int parts = max < 0 ? int.MaxValue : (int)max + 1;
                    if (sep is null) return s.Split((char[]?)null, parts, StringSplitOptions.RemoveEmptyEntries).Select(x => (object?)x).ToList();
                    return s.Split(sep, parts).Select(x => (object?)x).ToList();
                }
            }
        }
        if (self is JinjaDict d)
        {
            switch (method)
            {
                case "items": return d.OrderedKeys.Select(k => (object?)new List<object?> { k, d[k] }).ToList();
                case "keys": return d.OrderedKeys.Select(k => (object?)k).ToList();
                case "values": return d.OrderedKeys.Select(k => d[k]).ToList();
                case "get": return d.TryGetValue(JinjaValues.Str(args[0]), out var got) ? got : args.Count > 1 ? args[1] : null;
            }
        }
        throw Unsupported("method", $"{(self is string ? "str" : JinjaValues.TypeName(self))}.{method}", "strip, lstrip, rstrip, upper, lower, title, capitalize, startswith, endswith, replace, split on strings; items, keys, values, get on mappings");
    }

    static IEnumerable<string> Affixes(List<object?> args) => args.Count != 1 ? [] : args[0] switch
    {
        string one => [one],
        List<object?> many => many.OfType<string>(),
        _ => [],
    };

    /// <summary>The global functions: raise_exception, namespace, range, strftime_now, dict.</summary>
    public static void AddGlobals(JinjaScope scope, DateTime now)
    {
        scope.Set("raise_exception", (JinjaFunction)((args, _) => throw new ChatTemplateException($"the chat template refuses these messages: {(args.Count > 0 ? JinjaValues.Str(args[0]) : "")}")));
        scope.Set("namespace", (JinjaFunction)((_, kwargs) => { var d = new JinjaDict(); foreach (var (k, v) in kwargs) d[k] = v; return d; }));
        scope.Set("dict", (JinjaFunction)((_, kwargs) => { var d = new JinjaDict(); foreach (var (k, v) in kwargs) d[k] = v; return d; }));
        scope.Set("range", (JinjaFunction)((args, _) =>
        {
            long start = 0, stop, step = 1;
            if (args.Count == 1) stop = (long)args[0]!;
            else { start = (long)args[0]!; stop = (long)args[1]!; if (args.Count > 2) step = (long)args[2]!; }
            var list = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
            return list;
        }));
        scope.Set("strftime_now", (JinjaFunction)((args, _) => Strftime(now, args.Count > 0 ? JinjaValues.Str(args[0]) : "")));
    }

    /// <summary>The C strftime directives templates use (%d %b %Y and friends).</summary>
    static string Strftime(DateTime t, string format)
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { sb.Append(format[i]); continue; }
            char f = format[++i];
            sb.Append(f switch
            {
                'd' => t.ToString("dd", ci), 'm' => t.ToString("MM", ci), 'Y' => t.ToString("yyyy", ci), 'y' => t.ToString("yy", ci),
                'b' => t.ToString("MMM", ci), 'B' => t.ToString("MMMM", ci), 'a' => t.ToString("ddd", ci), 'A' => t.ToString("dddd", ci),
                'H' => t.ToString("HH", ci), 'M' => t.ToString("mm", ci), 'S' => t.ToString("ss", ci), '%' => "%",
                _ => throw new ChatTemplateException($"chat_template: strftime_now's directive %{f} is not supported."),
            });
        }
        return sb.ToString();
    }
}
