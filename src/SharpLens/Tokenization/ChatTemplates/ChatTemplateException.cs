namespace SharpLens.Tokenization.ChatTemplates;

/// <summary>
/// A chat template that cannot be rendered: a construct outside the supported Jinja subset (named), a syntax error
/// (with its position), or the template's own raise_exception (its message).
/// </summary>
public sealed class ChatTemplateException(string message) : SharpLensException(message);
