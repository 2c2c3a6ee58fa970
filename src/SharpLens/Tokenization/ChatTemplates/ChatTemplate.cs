using System.Text;
using System.Text.Json.Nodes;

namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>One chat message: its role ("system", "user", "assistant", ...) and content.</summary>
public sealed record ChatMessage(string Role, string Content);

/// <summary>
/// A Hugging Face <c>chat_template</c> (tokenizer_config.json's Jinja template) rendered as transformers'
/// apply_chat_template renders it: the template sees <c>messages</c>, <c>add_generation_prompt</c>, the special tokens
/// (<c>bos_token</c>, <c>eos_token</c>, ...) and raise_exception / namespace / range / strftime_now, in a Jinja
/// environment with trim_blocks and lstrip_blocks. The Jinja subset covers what the templates of Llama 3, Gemma 2 / 3,
/// Qwen 2.5 / 3 and Mistral use: text, {{ expressions }}, if / elif / else, for (with loop.*, else, break, continue),
/// set (also of a namespace's attribute), generation blocks, and Python-like expressions with filters, tests, slices
/// and string methods. Any other construct is refused with a <see cref="ChatTemplateException"/> naming it.
/// </summary>
public sealed class ChatTemplate
{
    readonly List<Node> _body;

    public string Source { get; }

    public ChatTemplate(string template)
    {
        Source = template;
        var parts = JinjaLexer.Split(template);
        int at = 0;
        _body = ParseBlock(parts, ref at, []);
        if (at < parts.Count) throw new ChatTemplateException($"chat_template: '{{% {parts[at].Text} %}}' at offset {parts[at].Offset} closes nothing that is open.");
    }

    /// <summary>The prompt text of a conversation; <paramref name="variables"/> adds bos_token and the like (strings), tools etc. (JSON).</summary>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? variables = null)
    {
        var scope = new JinjaScope(null);
        JinjaBuiltins.AddGlobals(scope, DateTime.Now);
        foreach (var (k, v) in variables ?? new Dictionary<string, object?>()) scope.Set(k, v is JsonNode node ? JinjaValues.From(node) : v);
        scope.Set("messages", messages.Select(m => (object?)new JinjaDict { ["role"] = m.Role, ["content"] = m.Content }).ToList());
        scope.Set("add_generation_prompt", addGenerationPrompt);
        var output = new StringBuilder();
        Execute(_body, scope, output);
        return output.ToString();
    }

    // ---- the statements -----------------------------------------------------------------------------------------

    abstract record Node;
    sealed record TextNode(string Text) : Node;
    sealed record OutputNode(Expr Value) : Node;
    sealed record IfNode(List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node;
    sealed record ForNode(List<string> Targets, Expr Items, Expr? Filter, List<Node> Body, List<Node>? Else) : Node;
    sealed record SetNode(string Name, string? Attr, Expr Value) : Node;
    sealed record LoopControl(bool Break) : Node;

    sealed class BreakSignal(bool isBreak) : Exception { public bool IsBreak { get; } = isBreak; }

    static readonly string[] Supported = ["if", "elif", "else", "endif", "for", "endfor", "set", "break", "continue", "generation", "endgeneration"];

    static List<Node> ParseBlock(List<TemplatePart> parts, ref int at, string[] terminators)
    {
        var nodes = new List<Node>();
        while (at < parts.Count)
        {
            var part = parts[at];
            if (part.Kind == TemplatePartKind.Text) { nodes.Add(new TextNode(part.Text)); at++; continue; }
            if (part.Kind == TemplatePartKind.Expression) { nodes.Add(new OutputNode(ExpressionParser.Parse(part.Text))); at++; continue; }
            string keyword = part.Text.Split([' ', '\t', '\n', '('], 2)[0];
            if (terminators.Contains(keyword)) return nodes;
            at++;
            string rest = part.Text[keyword.Length..].Trim();
            switch (keyword)
            {
                case "if":
                {
                    var branches = new List<(Expr, List<Node>)>();
                    List<Node>? otherwise = null;
                    var condition = ExpressionParser.Parse(rest);
                    while (true)
                    {
                        var body = ParseBlock(parts, ref at, ["elif", "else", "endif"]);
                        branches.Add((condition, body));
                        if (at >= parts.Count) throw new ChatTemplateException($"chat_template: the '{{% if {rest} %}}' at offset {part.Offset} has no endif.");
                        var end = parts[at++];
                        if (end.Text.StartsWith("elif", StringComparison.Ordinal)) { condition = ExpressionParser.Parse(end.Text[4..].Trim()); continue; }
                        if (end.Text == "else")
                        {
                            otherwise = ParseBlock(parts, ref at, ["endif"]);
                            if (at >= parts.Count) throw new ChatTemplateException($"chat_template: the '{{% if {rest} %}}' at offset {part.Offset} has no endif.");
                            at++;
                        }
                        break;
                    }
                    nodes.Add(new IfNode(branches, otherwise));
                    break;
                }
                case "for":
                {
                    var p = ExpressionParser.For(rest);
                    var targets = new List<string> { p.Take() };
                    while (p.Peek == ",") { p.Take(); targets.Add(p.Take()); }
                    p.Expect("in");
                    var items = p.OrExpression();
                    Expr? filter = null;
                    if (p.Peek == "if") { p.Take(); filter = p.OrExpression(); }
                    if (p.Peek == "recursive") throw new ChatTemplateException("chat_template uses a recursive for loop, which SharpLens's Jinja subset does not have.");
                    if (!p.AtEnd) throw p.Error($"unexpected '{p.Peek}'");
                    var body = ParseBlock(parts, ref at, ["else", "endfor"]);
                    List<Node>? otherwise = null;
                    if (at >= parts.Count) throw new ChatTemplateException($"chat_template: the '{{% for {rest} %}}' at offset {part.Offset} has no endfor.");
                    if (parts[at++].Text == "else")
                    {
                        otherwise = ParseBlock(parts, ref at, ["endfor"]);
                        if (at >= parts.Count) throw new ChatTemplateException($"chat_template: the '{{% for {rest} %}}' at offset {part.Offset} has no endfor.");
                        at++;
                    }
                    nodes.Add(new ForNode(targets, items, filter, body, otherwise));
                    break;
                }
                case "set":
                {
                    int eq = rest.IndexOf('=');
                    if (eq < 0) throw new ChatTemplateException($"chat_template uses a block set ('{{% set {rest} %}}' … endset), which SharpLens's Jinja subset does not have.");
                    string target = rest[..eq].Trim();
                    var value = ExpressionParser.Parse(rest[(eq + 1)..]);
                    var dot = target.Split('.', 2);
                    if (target.Contains(',')) throw new ChatTemplateException($"chat_template sets several names at once ('{target}'), which SharpLens's Jinja subset does not have.");
                    nodes.Add(new SetNode(dot[0].Trim(), dot.Length > 1 ? dot[1].Trim() : null, value));
                    break;
                }
                case "break" or "continue": nodes.Add(new LoopControl(keyword == "break")); break;
                case "generation":
                {
                    var body = ParseBlock(parts, ref at, ["endgeneration"]);
                    if (at >= parts.Count) throw new ChatTemplateException($"chat_template: the '{{% generation %}}' at offset {part.Offset} has no endgeneration.");
                    at++;
                    nodes.AddRange(body);
                    break;
                }
                default:
                    throw new ChatTemplateException($"chat_template uses the statement '{{% {keyword} %}}' (offset {part.Offset}), which SharpLens's Jinja subset does not have (it has {string.Join(", ", Supported)}). The template is refused rather than rendered differently from transformers.");
            }
        }
        if (terminators.Length > 0 && at >= parts.Count) return nodes;
        return nodes;
    }

    static void Execute(List<Node> nodes, JinjaScope scope, StringBuilder output)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode t: output.Append(t.Text); break;
                case OutputNode o: output.Append(JinjaValues.Str(o.Value.Evaluate(scope))); break;
                case IfNode i:
                    var branch = i.Branches.FirstOrDefault(b => JinjaValues.Truthy(b.Condition.Evaluate(scope)));
                    var chosen = branch.Body ?? i.Else;
                    if (chosen is not null) Execute(chosen, scope, output);
                    break;
                case SetNode s:
                    var value = s.Value.Evaluate(scope);
                    if (s.Attr is null) scope.Set(s.Name, value);
                    else if (scope.Lookup(s.Name) is JinjaDict ns) ns[s.Attr] = value;
                    else throw new ChatTemplateException($"chat_template sets {s.Name}.{s.Attr}, but {s.Name} is not a namespace().");
                    break;
                case LoopControl c: throw new BreakSignal(c.Break);
                case ForNode f: RunFor(f, scope, output); break;
            }
        }
    }

    static void RunFor(ForNode f, JinjaScope scope, StringBuilder output)
    {
        var source = f.Items.Evaluate(scope);
        List<object?> items = source switch
        {
            List<object?> l => l,
            JinjaDict d => [.. d.OrderedKeys],
            string s => [.. s.Select(c => (object?)c.ToString())],
            null or JinjaUndefined => [],
            _ => throw new ChatTemplateException($"chat_template loops over {JinjaValues.TypeName(source)}."),
        };
        if (f.Filter is not null)
            items = [.. items.Where(item => { var probe = new JinjaScope(scope); Bind(probe, f.Targets, item); return JinjaValues.Truthy(f.Filter.Evaluate(probe)); })];
        if (items.Count == 0)
        {
            if (f.Else is not null) Execute(f.Else, scope, output);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            var inner = new JinjaScope(scope);
            Bind(inner, f.Targets, items[i]);
            inner.Set("loop", new JinjaDict
            {
                ["index"] = (long)i + 1, ["index0"] = (long)i, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["first"] = i == 0, ["last"] = i == items.Count - 1, ["length"] = (long)items.Count,
                ["previtem"] = i > 0 ? items[i - 1] : JinjaUndefined.Value, ["nextitem"] = i + 1 < items.Count ? items[i + 1] : JinjaUndefined.Value,
            });
            try { Execute(f.Body, inner, output); }
            catch (BreakSignal signal)
            {
                if (signal.IsBreak) break;
            }
        }
    }

    static void Bind(JinjaScope scope, List<string> targets, object? item)
    {
        if (targets.Count == 1) { scope.Set(targets[0], item); return; }
        if (item is not List<object?> tuple || tuple.Count != targets.Count)
            throw new ChatTemplateException($"chat_template unpacks {JinjaValues.TypeName(item)} into {targets.Count} names.");
        for (int i = 0; i < targets.Count; i++) scope.Set(targets[i], tuple[i]);
    }
}
