using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace SharpLens.Server.Explorer;

/// <summary>
/// The Explorer's gate, run on every request before routing: the Host header must name this server (a page on another
/// site that rebinds its DNS name to 127.0.0.1 sends its own name: 403), and the per-run token must come with the
/// request — as <c>?token=</c> (the URL the CLI prints; it then sets a cookie), the cookie, or an
/// <c>X-Explorer-Token</c> / <c>Authorization: Bearer</c> header (scripts) — else 401.
/// </summary>
sealed class ExplorerSecurity(string token, Func<int> port, IReadOnlyCollection<string> hosts)
{
    readonly byte[] _token = SHA256.HashData(Encoding.UTF8.GetBytes(token));

    public string CookieName => $"sharplens_explorer_{port()}";

    public async Task Gate(HttpContext http, RequestDelegate next)
    {
        var host = http.Request.Host;
        if (!host.HasValue || !hosts.Contains(host.Host, StringComparer.OrdinalIgnoreCase) || (host.Port ?? 80) != port())
        {
            await ExplorerServer.Refuse(http, 403, $"The Host header '{host.Value}' does not name this server (it answers to {string.Join(", ", hosts.Select(h => $"{h}:{port()}"))}); requests through another name are refused (DNS rebinding).");
            return;
        }
        string? fromQuery = http.Request.Query["token"];
        string? presented = fromQuery ?? http.Request.Cookies[CookieName] ?? http.Request.Headers["X-Explorer-Token"];
        string? auth = http.Request.Headers.Authorization;
        if (presented is null && auth is not null && auth.StartsWith("Bearer ", StringComparison.Ordinal)) presented = auth[7..].Trim();
        if (!Matches(presented))
        {
            await ExplorerServer.Refuse(http, 401, "Missing or wrong access token: open the URL `sharplens explore` printed (it carries ?token=…), or send the token as an X-Explorer-Token header.");
            return;
        }
        if (fromQuery is not null)
            http.Response.Cookies.Append(CookieName, fromQuery, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = "/", IsEssential = true });
        http.Response.Headers["X-Content-Type-Options"] = "nosniff";
        http.Response.Headers["Referrer-Policy"] = "no-referrer";
        await next(http);
    }

    bool Matches(string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(_token, SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}
