using SharpLens.Tracing;

namespace SharpLens.Server;

/// <summary>How a SharpLens server listens and what it allows.</summary>
public sealed record TraceServerOptions
{
    /// <summary>Where to listen; loopback by default. Binding another address exposes the server: put TLS in front of it.</summary>
    public string Url { get; init; } = "http://127.0.0.1:5000";
    /// <summary>A run still going after this long is stopped and its tensors freed.</summary>
    public TimeSpan MaxRunTime { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Largest request body accepted (a plan with its constants).</summary>
    public long MaxRequestBytes { get; init; } = 32L << 20;
    /// <summary>Runs waiting per model before new ones are refused (503).</summary>
    public int MaxQueueLength { get; init; } = 256;
    public PlanLimits Limits { get; init; } = PlanLimits.Server;
}
