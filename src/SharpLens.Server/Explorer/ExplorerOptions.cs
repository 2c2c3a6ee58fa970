namespace SharpLens.Server.Explorer;

/// <summary>Where the Explorer listens and what one request may ask of it.</summary>
public sealed record ExplorerOptions
{
    /// <summary>The address to bind. Loopback unless the user names another with <c>--host</c> (then anyone who can
    /// reach it and has the token can use the model).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>0 picks a free port.</summary>
    public int Port { get; init; }
    /// <summary>The per-run access token; a fresh random one when null.</summary>
    public string? Token { get; init; }
    /// <summary>Largest request body, in bytes; a larger one is refused with 400 before it is read.</summary>
    public long MaxBodyBytes { get; init; } = 64 << 10;
    /// <summary>Longest prompt text, in characters.</summary>
    public int MaxPromptChars { get; init; } = 4000;
    /// <summary>Most tokens in a prompt (also never more than the model's context).</summary>
    public int MaxPromptTokens { get; init; } = 256;
    /// <summary>Most tokens one generation may add.</summary>
    public int MaxNewTokens { get; init; } = 100;
    /// <summary>Largest top-k asked for.</summary>
    public int MaxTopK { get; init; } = 50;
    /// <summary>Finished jobs kept for their results.</summary>
    public int KeptJobs { get; init; } = 32;
}
