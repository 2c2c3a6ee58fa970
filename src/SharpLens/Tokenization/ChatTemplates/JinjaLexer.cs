using System.Text;

namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>One piece of a template: literal text, an expression {{ … }} or a statement {% … %}.</summary>
readonly record struct TemplatePart(TemplatePartKind Kind, string Text, int Offset);

enum TemplatePartKind { Text, Expression, Statement }

/// <summary>
/// Splits a Jinja template into text, {{ expressions }} and {% statements %} (comments {# … #} dropped), applying
/// whitespace control as transformers' Jinja environment does: a '-' inside a delimiter strips the whitespace on that
/// side; trim_blocks drops the first newline after a statement; lstrip_blocks drops spaces and tabs from the start of a
/// line up to a statement.
/// </summary>
static class JinjaLexer
{
    public static List<TemplatePart> Split(string template)
    {
        var parts = new List<TemplatePart>();
        var text = new StringBuilder();
        int textStart = 0;
        bool trimNextNewline = false, stripNextLeading = false;
        int at = 0;
        void FlushText(bool stripTrailing, bool lstripBlock)
        {
            string s = text.ToString();
            bool lineStarting = textStart == 0 || template[textStart - 1] == '\n';
            if (stripNextLeading) s = s.TrimStart();
            else if (trimNextNewline && s.StartsWith('\n')) (s, lineStarting) = (s[1..], true);
            else if (trimNextNewline && s.StartsWith("\r\n", StringComparison.Ordinal)) (s, lineStarting) = (s[2..], true);
            if (stripTrailing) s = s.TrimEnd();
            else if (lstripBlock)
            {
                // lstrip_blocks: spaces and tabs between the start of the line and the block tag go.
                int lineStart = s.LastIndexOf('\n') + 1;
                if ((lineStart > 0 || lineStarting) && s.AsSpan(lineStart).TrimStart(" \t").IsEmpty) s = s[..lineStart];
            }
            if (s.Length > 0) parts.Add(new TemplatePart(TemplatePartKind.Text, s, textStart));
            text.Clear();
            (trimNextNewline, stripNextLeading) = (false, false);
        }
        while (at < template.Length)
        {
            if (template[at] == '{' && at + 1 < template.Length && template[at + 1] is '{' or '%' or '#')
            {
                char kind = template[at + 1];
                string close = kind switch { '{' => "}}", '%' => "%}", _ => "#}" };
                int inner = at + 2;
                bool stripLeft = inner < template.Length && template[inner] == '-';
                bool plusLeft = inner < template.Length && template[inner] == '+';
                if (stripLeft || plusLeft) inner++;
                int end = FindClose(template, inner, close, kind);
                if (end < 0) throw new ChatTemplateException($"chat_template: the '{{{kind}' at offset {at} is never closed with '{close}'.");
                bool stripRight = end > inner && template[end - 1] == '-';
                string body = template[inner..(stripRight ? end - 1 : end)];
                FlushText(stripLeft, lstripBlock: kind != '{' && !plusLeft);
                if (kind == '{') parts.Add(new TemplatePart(TemplatePartKind.Expression, body.Trim(), at));
                else if (kind == '%') parts.Add(new TemplatePart(TemplatePartKind.Statement, body.Trim(), at));
                at = end + 2;
                textStart = at;
                if (stripRight) stripNextLeading = true;
                else if (kind != '{') trimNextNewline = true; // trim_blocks
                continue;
            }
            text.Append(template[at++]);
        }
        FlushText(false, false);
        return parts;
    }

    /// <summary>The offset of the closing delimiter, skipping string literals inside expressions and statements.</summary>
    static int FindClose(string s, int from, string close, char kind)
    {
        char? quote = null;
        for (int i = from; i < s.Length - 1; i++)
        {
            char c = s[i];
            if (kind != '#' && quote is null && c is '\'' or '"') { quote = c; continue; }
            if (quote is not null)
            {
                if (c == '\\') { i++; continue; }
                if (c == quote) quote = null;
                continue;
            }
            if (c == close[0] && s[i + 1] == close[1]) return i;
        }
        return -1;
    }
}
