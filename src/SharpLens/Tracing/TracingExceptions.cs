namespace SharpLens.Tracing;

/// <summary>A plan (or a trace built in C#) that cannot run as written; the message names the op and what to change.</summary>
public class PlanValidationException(string message) : SharpLensException(message);

/// <summary>A trace reaches a value before the forward pass produces it; the message names both hooks.</summary>
public sealed class TraceOrderException(string message) : PlanValidationException(message);

/// <summary>A write whose value does not fit the activation it replaces; the message names the hook, invoke and shapes.</summary>
public sealed class TraceShapeException(string message) : SharpLensException(message);

/// <summary>A plan ran past its time limit and was stopped; its tensors were freed.</summary>
public sealed class TraceTimeoutException(string message) : SharpLensException(message);

/// <summary>A remote run was refused or failed on the server; the message is the server's.</summary>
public sealed class RemoteTraceException(string message, int statusCode) : SharpLensException(message)
{
    /// <summary>The HTTP status (401 bad key, 429 over quota, 400 invalid plan, 408 time limit, 500 server error).</summary>
    public int StatusCode { get; } = statusCode;
}
