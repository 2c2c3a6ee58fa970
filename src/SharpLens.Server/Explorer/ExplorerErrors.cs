using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace SharpLens.Server.Explorer;

/// <summary>How a failure reads in an answer: the message a user can act on, never a stack trace.</summary>
static class ExplorerErrors
{
    /// <summary>The status and message for <paramref name="e"/>: 400 for bad input (SharpLens's own refusals and
    /// argument errors, unreadable JSON), its own status for HTTP-level refusals, 500 with the error's kind for the rest.</summary>
    public static (int Status, string Message) Classify(Exception e) => e switch
    {
        ExplorerRequestException r => (r.Status, r.Message),
        JsonException j => (400, $"The request body is not valid JSON for this endpoint{(j.Path is { Length: > 1 } p ? $" (at {p})" : "")}: {FirstLine(j.Message.Split(" Path:")[0])}"),
        BadHttpRequestException b => (b.StatusCode, $"The request was refused: {FirstLine(b.Message)}"),
        SharpLensException or ArgumentException => (400, FirstLine(e.Message)),
        _ => (500, $"The Explorer failed on this request ({e.GetType().Name}: {FirstLine(e.Message)}). The server's console has the details."),
    };

    public static string Describe(Exception e) => Classify(e).Message;

    static string FirstLine(string s)
    {
        int n = s.IndexOf('\n');
        return n < 0 ? s : s[..n].TrimEnd();
    }
}
