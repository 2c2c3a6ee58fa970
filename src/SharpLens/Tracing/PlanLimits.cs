namespace SharpLens.Tracing;

/// <summary>
/// What a plan may ask for. A server checks every plan against these before anything runs, so a hostile plan cannot
/// allocate without bound, recurse without bound or run without bound; <see cref="Local"/> is roomier, for plans run
/// on one's own machine.
/// </summary>
public sealed record PlanLimits
{
    /// <summary>JSON nesting allowed by the parser (an expression of depth d nests about 2d levels).</summary>
    public const int JsonMaxDepth = 96;

    public int MaxOps { get; init; } = 2_000;
    public int MaxExpressionDepth { get; init; } = 32;
    /// <summary>Expression nodes in the whole plan.</summary>
    public int MaxExpressionNodes { get; init; } = 20_000;
    public int MaxInvokes { get; init; } = 64;
    /// <summary>Tokens over all invokes (batch × pos, padding included).</summary>
    public long MaxTokens { get; init; } = 65_536;
    public int MaxNewTokens { get; init; } = 256;
    /// <summary>Elements over all inline constants.</summary>
    public long MaxConstantElements { get; init; } = 4_000_000;
    /// <summary>Elements of any one value an expression computes (checked before it is allocated).</summary>
    public long MaxValueElements { get; init; } = 64_000_000;
    public int MaxTextLength { get; init; } = 100_000;

    /// <summary>Limits for a shared server.</summary>
    public static PlanLimits Server { get; } = new();

    /// <summary>Limits for plans run in this process: ten times a server's.</summary>
    public static PlanLimits Local { get; } = new()
    {
        MaxOps = 20_000, MaxExpressionNodes = 200_000, MaxInvokes = 1_024, MaxTokens = 1_048_576, MaxNewTokens = 4_096,
        MaxConstantElements = 100_000_000, MaxValueElements = 1_000_000_000,
    };
}
