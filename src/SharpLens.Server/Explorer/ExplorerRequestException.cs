namespace SharpLens.Server.Explorer;

/// <summary>A request the Explorer refuses: the message names the field and says what to send instead. Answered with
/// <see cref="Status"/> and <c>{"error": message}</c>.</summary>
public sealed class ExplorerRequestException(string message, int status = 400) : SharpLensException(message)
{
    public int Status { get; } = status;
}
