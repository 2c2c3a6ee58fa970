using System.Globalization;
using System.Text;

namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>An expression of the template language, evaluated against a scope.</summary>
abstract record Expr
{
    public abstract object? Evaluate(JinjaScope scope);
}

sealed record Literal(object? Value) : Expr { public override object? Evaluate(JinjaScope scope) => Value; }
sealed record Name(string Id) : Expr { public override object? Evaluate(JinjaScope scope) => scope.Lookup(Id); }
sealed record ListExpr(List<Expr> Items) : Expr
{
    public override object? Evaluate(JinjaScope scope) => Items.Select(i => i.Evaluate(scope)).ToList();
}
sealed record DictExpr(List<(Expr Key, Expr Value)> Items) : Expr
{
    public override object? Evaluate(JinjaScope scope)
    {
        var d = new JinjaDict();
        foreach (var (k, v) in Items) d[JinjaValues.Str(k.Evaluate(scope))] = v.Evaluate(scope);
        return d;
    }
}
sealed record Attribute(Expr Target, string Attr) : Expr
{
    public override object? Evaluate(JinjaScope scope) => JinjaValues.GetAttr(Target.Evaluate(scope), Attr);
}
sealed record Subscript(Expr Target, Expr Index) : Expr
{
    public override object? Evaluate(JinjaScope scope) => JinjaValues.GetItem(Target.Evaluate(scope), Index.Evaluate(scope));
}
sealed record SliceExpr(Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr
{
    public override object? Evaluate(JinjaScope scope) =>
        JinjaValues.Slice(Target.Evaluate(scope), Start?.Evaluate(scope), Stop?.Evaluate(scope), Step?.Evaluate(scope));
}
sealed record Call(Expr Target, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr
{
    public override object? Evaluate(JinjaScope scope)
    {
        var args = Args.Select(a => a.Evaluate(scope)).ToList();
        var kwargs = Kwargs.ToDictionary(k => k.Name, k => k.Value.Evaluate(scope));
        if (Target is Attribute method)
        {
            var self = method.Target.Evaluate(scope);
            return JinjaBuiltins.CallMethod(self, method.Attr, args, kwargs);
        }
        if (Target is Name { Id: var fn } && scope.Lookup(fn) is JinjaFunction f) return f(args, kwargs);
        if (Target is Name n) throw new ChatTemplateException($"chat_template calls {n.Id}(), which is not a function SharpLens's Jinja subset has (it has raise_exception, namespace, range, strftime_now, dict).");
        throw new ChatTemplateException("chat_template calls something that is not a function.");
    }
}
sealed record Filter(Expr Target, string FilterName, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr
{
    public override object? Evaluate(JinjaScope scope) =>
        JinjaBuiltins.ApplyFilter(FilterName, Target.Evaluate(scope), [.. Args.Select(a => a.Evaluate(scope))], Kwargs.ToDictionary(k => k.Name, k => k.Value.Evaluate(scope)));
}
sealed record Test(Expr Target, string TestName, List<Expr> Args, bool Negated) : Expr
{
    public override object? Evaluate(JinjaScope scope)
    {
        bool result = JinjaBuiltins.ApplyTest(TestName, Target, scope, [.. Args.Select(a => a.Evaluate(scope))]);
        return Negated ? !result : result;
    }
}
sealed record Unary(string Op, Expr Operand) : Expr
{
    public override object? Evaluate(JinjaScope scope)
    {
        var v = Operand.Evaluate(scope);
        return Op switch
        {
            "not" => !JinjaValues.Truthy(v),
            "-" => v is long l ? (object)(-l) : -JinjaValues.Number(v, "-"),
            "+" => v,
            _ => throw new SharpLensInternalException($"the Jinja operator '{Op}' was parsed but has no case here."),
        };
    }
}
sealed record Conditional(Expr Condition, Expr Then, Expr? Else) : Expr
{
    public override object? Evaluate(JinjaScope scope) =>
        JinjaValues.Truthy(Condition.Evaluate(scope)) ? Then.Evaluate(scope) : Else is null ? JinjaUndefined.Value : Else.Evaluate(scope);
}
sealed record Binary(string Op, Expr Left, Expr Right) : Expr
{
    public override object? Evaluate(JinjaScope scope)
    {
        if (Op == "and") { var l = Left.Evaluate(scope); return JinjaValues.Truthy(l) ? Right.Evaluate(scope) : l; }
        if (Op == "or") { var l = Left.Evaluate(scope); return JinjaValues.Truthy(l) ? l : Right.Evaluate(scope); }
        var a = Left.Evaluate(scope);
        var b = Right.Evaluate(scope);
        return Op switch
        {
            "==" => JinjaValues.Equal(a, b),
            "!=" => !JinjaValues.Equal(a, b),
            "<" => JinjaValues.Compare(a, b) < 0,
            ">" => JinjaValues.Compare(a, b) > 0,
            "<=" => JinjaValues.Compare(a, b) <= 0,
            ">=" => JinjaValues.Compare(a, b) >= 0,
            "in" => JinjaValues.Contains(b, a),
            "not in" => !JinjaValues.Contains(b, a),
            "~" => JinjaValues.Str(a) + JinjaValues.Str(b),
            "+" => (a, b) switch
            {
                (string x, string y) => x + y,
                (List<object?> x, List<object?> y) => (object)x.Concat(y).ToList(),
                (long x, long y) => (object)(x + y),
                _ when a is long or double or bool && b is long or double or bool => JinjaValues.Number(a, "+") + JinjaValues.Number(b, "+"),
                _ => throw new ChatTemplateException($"chat_template adds {JinjaValues.TypeName(a)} and {JinjaValues.TypeName(b)}, which Jinja cannot (use ~ to join as text)."),
            },
            "-" => a is long x && b is long y ? (object)(x - y) : JinjaValues.Number(a, "-") - JinjaValues.Number(b, "-"),
            "*" => (a, b) switch
            {
                (string s, long n) => string.Concat(Enumerable.Repeat(s, (int)Math.Max(0, n))),
                (long x, long y) => (object)(x * y),
                _ => JinjaValues.Number(a, "*") * JinjaValues.Number(b, "*"),
            },
            "/" => JinjaValues.Number(a, "/") / JinjaValues.Number(b, "/"),
            "//" => a is long x && b is long y ? (object)(long)Math.Floor((double)x / y) : Math.Floor(JinjaValues.Number(a, "//") / JinjaValues.Number(b, "//")),
            "%" => a is long x && b is long y ? (object)(((x % y) + y) % y) : JinjaValues.Number(a, "%") % JinjaValues.Number(b, "%"),
            _ => throw new SharpLensInternalException($"the Jinja operator '{Op}' was parsed but has no case here."),
        };
    }
}

/// <summary>Parses one expression: Jinja's precedence from the conditional down to postfix subscripts and filters.</summary>
sealed class ExpressionParser
{
    readonly List<string> _tokens;
    int _at;
    readonly string _source;

    ExpressionParser(string source)
    {
        _source = source;
        _tokens = Tokenize(source);
    }

    public static Expr Parse(string source)
    {
        var p = new ExpressionParser(source);
        var e = p.ParseConditional();
        if (p._at != p._tokens.Count) throw p.Error($"unexpected '{p._tokens[p._at]}'");
        return e;
    }

    /// <summary>Parses "a, b in expr" style heads: the tokens, for statement parsers.</summary>
    public static ExpressionParser For(string source) => new(source);
    public bool AtEnd => _at >= _tokens.Count;
    public string? Peek => _at < _tokens.Count ? _tokens[_at] : null;
    public string Take() => _at < _tokens.Count ? _tokens[_at++] : throw Error("the statement ends too early");
    public void Expect(string token) { if (Take() != token) throw Error($"expected '{token}'"); }
    public Expr Expression() => ParseConditional();
    public Expr OrExpression() => ParseOr();

    public ChatTemplateException Error(string problem) => new($"chat_template: {problem} in \"{_source}\".");

    Expr ParseConditional()
    {
        var e = ParseOr();
        if (Peek == "if")
        {
            _at++;
            var condition = ParseOr();
            Expr? otherwise = null;
            if (Peek == "else") { _at++; otherwise = ParseConditional(); }
            return new Conditional(condition, e, otherwise);
        }
        return e;
    }

    Expr ParseOr()
    {
        var e = ParseAnd();
        while (Peek == "or") { _at++; e = new Binary("or", e, ParseAnd()); }
        return e;
    }

    Expr ParseAnd()
    {
        var e = ParseNot();
        while (Peek == "and") { _at++; e = new Binary("and", e, ParseNot()); }
        return e;
    }

    Expr ParseNot()
    {
        if (Peek == "not") { _at++; return new Unary("not", ParseNot()); }
        return ParseComparison();
    }

    Expr ParseComparison()
    {
        var e = ParseConcat();
        while (true)
        {
            if (Peek is "==" or "!=" or "<" or ">" or "<=" or ">=") { var op = Take(); e = new Binary(op, e, ParseConcat()); }
            else if (Peek == "in") { _at++; e = new Binary("in", e, ParseConcat()); }
            else if (Peek == "not" && _at + 1 < _tokens.Count && _tokens[_at + 1] == "in") { _at += 2; e = new Binary("not in", e, ParseConcat()); }
            else if (Peek == "is")
            {
                _at++;
                bool negated = false;
                if (Peek == "not") { _at++; negated = true; }
                string name = Take();
                var args = new List<Expr>();
                if (Peek == "(") { _at++; while (Peek != ")") { args.Add(ParseConditional()); if (Peek == ",") _at++; } _at++; }
                else if (Peek is not (null or ")" or "]" or "," or "and" or "or" or "else" or "if" or "}" or ":")) args.Add(ParseConcat());
                e = new Test(e, name, args, negated);
            }
            else return e;
        }
    }

    Expr ParseConcat()
    {
        var e = ParseAdditive();
        while (Peek == "~") { _at++; e = new Binary("~", e, ParseAdditive()); }
        return e;
    }

    Expr ParseAdditive()
    {
        var e = ParseMultiplicative();
        while (Peek is "+" or "-") { var op = Take(); e = new Binary(op, e, ParseMultiplicative()); }
        return e;
    }

    Expr ParseMultiplicative()
    {
        var e = ParseUnary();
        while (Peek is "*" or "/" or "//" or "%") { var op = Take(); e = new Binary(op, e, ParseUnary()); }
        return e;
    }

    Expr ParseUnary()
    {
        if (Peek is "-" or "+") { var op = Take(); return new Unary(op, ParseUnary()); }
        return ParsePostfix(ParsePrimary());
    }

    Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            switch (Peek)
            {
                case ".": _at++; e = new Attribute(e, Take()); break;
                case "[":
                    _at++;
                    Expr? start = null, stop = null, step = null;
                    bool slice = false;
                    if (Peek != ":") start = ParseConditional();
                    if (Peek == ":")
                    {
                        slice = true; _at++;
                        if (Peek is not ("]" or ":")) stop = ParseConditional();
                        if (Peek == ":") { _at++; if (Peek != "]") step = ParseConditional(); }
                    }
                    Expect("]");
                    e = slice ? new SliceExpr(e, start, stop, step) : new Subscript(e, start!);
                    break;
                case "(":
                    var (args, kwargs) = Arguments();
                    e = new Call(e, args, kwargs);
                    break;
                case "|":
                    _at++;
                    string name = Take();
                    var (fargs, fkwargs) = Peek == "(" ? Arguments() : ([], []);
                    e = new Filter(e, name, fargs, fkwargs);
                    break;
                default: return e;
            }
        }
    }

    (List<Expr>, List<(string, Expr)>) Arguments()
    {
        Expect("(");
        var args = new List<Expr>();
        var kwargs = new List<(string, Expr)>();
        while (Peek != ")")
        {
            if (_at + 1 < _tokens.Count && _tokens[_at + 1] == "=" && IsName(Peek!)) { string k = Take(); _at++; kwargs.Add((k, ParseConditional())); }
            else args.Add(ParseConditional());
            if (Peek == ",") _at++;
            else if (Peek != ")") throw Error("expected ',' or ')' in a call");
        }
        _at++;
        return (args, kwargs);
    }

    Expr ParsePrimary()
    {
        string t = Take();
        if (t[0] is '\'' or '"') return new Literal(t[1..]);
        if (char.IsDigit(t[0]))
            return t.Contains('.') ? new Literal(double.Parse(t, CultureInfo.InvariantCulture)) : new Literal(long.Parse(t, CultureInfo.InvariantCulture));
        switch (t)
        {
            case "(":
                var inner = ParseConditional();
                if (Peek == ",") // a tuple: read as a list
                {
                    var items = new List<Expr> { inner };
                    while (Peek == ",") { _at++; if (Peek == ")") break; items.Add(ParseConditional()); }
                    Expect(")");
                    return new ListExpr(items);
                }
                Expect(")");
                return inner;
            case "[":
                var list = new List<Expr>();
                while (Peek != "]") { list.Add(ParseConditional()); if (Peek == ",") _at++; else if (Peek != "]") throw Error("expected ',' or ']'"); }
                _at++;
                return new ListExpr(list);
            case "{":
                var dict = new List<(Expr, Expr)>();
                while (Peek != "}") { var k = ParseConditional(); Expect(":"); dict.Add((k, ParseConditional())); if (Peek == ",") _at++; else if (Peek != "}") throw Error("expected ',' or '}'"); }
                _at++;
                return new DictExpr(dict);
            case "true" or "True": return new Literal(true);
            case "false" or "False": return new Literal(false);
            case "none" or "None": return new Literal(null);
        }
        if (IsName(t)) return new Name(t);
        throw Error($"unexpected '{t}'");
    }

    static bool IsName(string t) => t.Length > 0 && (char.IsLetter(t[0]) || t[0] == '_');

    /// <summary>Expression tokens; a string literal comes back as its quote followed by its decoded text.</summary>
    static List<string> Tokenize(string s)
    {
        var tokens = new List<string>();
        int i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            if (char.IsWhiteSpace(c)) { i++; continue; }
            if (c is '\'' or '"')
            {
                var text = new StringBuilder();
                int j = i + 1;
                for (; j < s.Length && s[j] != c; j++)
                {
                    if (s[j] == '\\' && j + 1 < s.Length)
                    {
                        j++;
                        text.Append(s[j] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', '\\' => '\\', '\'' => '\'', '"' => '"', _ => s[j] });
                    }
                    else text.Append(s[j]);
                }
                if (j >= s.Length) throw new ChatTemplateException($"chat_template: a string literal is never closed in \"{s}\".");
                tokens.Add(c + text.ToString());
                i = j + 1;
                continue;
            }
            if (char.IsDigit(c))
            {
                int j = i;
                while (j < s.Length && (char.IsDigit(s[j]) || (s[j] == '.' && j + 1 < s.Length && char.IsDigit(s[j + 1])))) j++;
                tokens.Add(s[i..j]);
                i = j;
                continue;
            }
            if (char.IsLetter(c) || c == '_')
            {
                int j = i;
                while (j < s.Length && (char.IsLetterOrDigit(s[j]) || s[j] == '_')) j++;
                tokens.Add(s[i..j]);
                i = j;
                continue;
            }
            string two = i + 1 < s.Length ? s.Substring(i, 2) : "";
            if (two is "==" or "!=" or "<=" or ">=" or "//" or "**") { tokens.Add(two); i += 2; continue; }
            if ("+-*/%~()[]{},:.|=<>".Contains(c)) { tokens.Add(c.ToString()); i++; continue; }
            throw new ChatTemplateException($"chat_template: the character '{c}' is not part of SharpLens's Jinja subset, in \"{s}\".");
        }
        return tokens;
    }
}
