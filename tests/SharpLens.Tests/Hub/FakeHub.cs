using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace SharpLens.Tests.Hub;

/// <summary>One repo the fake hub serves: files by path, which are LFS (served through the CDN), and access rules.</summary>
sealed class FakeRepo
{
    public string Commit { get; init; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));
    public Dictionary<string, byte[]> Files { get; } = [];
    public HashSet<string> Lfs { get; } = [];
    /// <summary>When set, only requests with "Authorization: Bearer {token}" get in; others get 401.</summary>
    public string? RequiredToken { get; init; }
    /// <summary>Bytes the CDN sends instead of the real ones (the HEAD still advertises the real sha256).</summary>
    public Dictionary<string, byte[]> Corrupt { get; } = [];

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
    /// <summary>A small file's ETag on the hub: git's blob id, sha1("blob {length}\0" + content).</summary>
    public static string GitSha1(byte[] bytes) => Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));
}

/// <summary>A request the fake hub saw.</summary>
sealed record SeenRequest(string Method, string Path, string? Range, string? Authorization);

/// <summary>
/// A loopback imitation of the Hugging Face hub on 127.0.0.1, written on a raw socket so that every header, redirect
/// and dropped connection is under the test's control: HEAD/GET /{repo}/resolve/{revision}/{file}, LFS files
/// answered with 302 to /cdn/{sha256} on "localhost" (another host, as a real CDN is), Range requests, 401 for a
/// gated repo without its token, 404 with X-Error-Code for missing files, and a connection dropped mid-file on demand.
/// </summary>
sealed class FakeHub : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;

    public Dictionary<string, FakeRepo> Repos { get; } = [];
    public ConcurrentQueue<SeenRequest> Requests { get; } = new();
    /// <summary>The next CDN GET of this sha256 sends its headers and only this many bytes, then drops the connection.</summary>
    public ConcurrentDictionary<string, int> DropAfter { get; } = new();
    public int Port { get; }
    public string Endpoint => $"http://127.0.0.1:{Port}";

    public FakeHub()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _loop = Task.Run(AcceptLoop);
    }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    async Task Serve(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        try
        {
            var (method, path, headers) = await ReadRequest(stream);
            headers.TryGetValue("range", out var range);
            headers.TryGetValue("authorization", out var auth);
            Requests.Enqueue(new SeenRequest(method, path, range, auth));
            await Respond(stream, method, path, range, auth);
        }
        catch (IOException) { } // the client went away
    }

    static async Task<(string, string, Dictionary<string, string>)> ReadRequest(NetworkStream stream)
    {
        var bytes = new List<byte>();
        var one = new byte[1];
        while (!(bytes.Count >= 4 && bytes[^4] == '\r' && bytes[^3] == '\n' && bytes[^2] == '\r' && bytes[^1] == '\n'))
        {
            if (await stream.ReadAsync(one) == 0) throw new IOException("closed before the request ended");
            bytes.Add(one[0]);
        }
        var lines = Encoding.ASCII.GetString([.. bytes]).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var first = lines[0].Split(' ');
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim().ToLowerInvariant(), p => p[1].Trim());
        return (first[0], Uri.UnescapeDataString(first[1]), headers);
    }

    async Task Respond(NetworkStream stream, string method, string path, string? range, string? auth)
    {
        if (path.StartsWith("/cdn/", StringComparison.Ordinal)) { await ServeCdn(stream, method, path["/cdn/".Length..], range); return; }
        var parts = path.TrimStart('/').Split('/');
        int resolve = Array.IndexOf(parts, "resolve");
        if (resolve < 1 || resolve + 2 >= parts.Length) { await Send(stream, 404, [], null, method); return; }
        string repoId = string.Join('/', parts[..resolve]), revision = parts[resolve + 1], file = string.Join('/', parts[(resolve + 2)..]);
        if (!Repos.TryGetValue(repoId, out var repo)) { await Send(stream, 404, [("X-Error-Code", "RepoNotFound")], null, method); return; }
        if (repo.RequiredToken is not null && auth != $"Bearer {repo.RequiredToken}") { await Send(stream, 401, [("X-Error-Code", "GatedRepo")], null, method); return; }
        if (revision != "main" && revision != repo.Commit) { await Send(stream, 404, [("X-Error-Code", "RevisionNotFound")], null, method); return; }
        if (!repo.Files.TryGetValue(file, out var content)) { await Send(stream, 404, [("X-Error-Code", "EntryNotFound"), ("X-Repo-Commit", repo.Commit)], null, method); return; }
        if (repo.Lfs.Contains(file))
        {
            string sha = FakeRepo.Sha256(content);
            _cdn[sha] = repo.Corrupt.TryGetValue(file, out var bad) ? bad : content;
            await Send(stream, 302, [("Location", $"http://localhost:{Port}/cdn/{sha}"), ("X-Repo-Commit", repo.Commit),
                ("ETag", $"\"{FakeRepo.GitSha1(content)}\""), ("X-Linked-Etag", $"\"{sha}\""), ("X-Linked-Size", content.Length.ToString())], null, method);
            return;
        }
        await Send(stream, 200, [("X-Repo-Commit", repo.Commit), ("ETag", $"\"{FakeRepo.GitSha1(content)}\"")], content, method);
    }

    readonly ConcurrentDictionary<string, byte[]> _cdn = new();

    async Task ServeCdn(NetworkStream stream, string method, string sha, string? range)
    {
        if (!_cdn.TryGetValue(sha, out var content)) { await Send(stream, 404, [], null, method); return; }
        long from = 0;
        if (range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-')) from = long.Parse(range[6..^1]);
        if (from >= content.Length && content.Length > 0) { await Send(stream, 416, [("Content-Range", $"bytes */{content.Length}")], null, method); return; }
        var body = content[(int)from..];
        List<(string, string)> headers = [("ETag", $"\"{sha}\"")];
        if (range is not null) headers.Add(("Content-Range", $"bytes {from}-{content.Length - 1}/{content.Length}"));
        if (method == "GET" && DropAfter.TryRemove(sha, out int keep))
        {
            await WriteHead(stream, range is null ? 200 : 206, headers, body.Length);
            await stream.WriteAsync(body.AsMemory(0, Math.Min(keep, body.Length)));
            await stream.FlushAsync();
            return; // closing now leaves the client short of the Content-Length it was promised
        }
        await Send(stream, range is null ? 200 : 206, headers, body, method);
    }

    static async Task Send(NetworkStream stream, int status, List<(string, string)> headers, byte[]? body, string method)
    {
        await WriteHead(stream, status, headers, body?.Length ?? 0);
        if (body is not null && method == "GET") await stream.WriteAsync(body);
        await stream.FlushAsync();
    }

    static async Task WriteHead(NetworkStream stream, int status, List<(string, string)> headers, long length)
    {
        var text = new StringBuilder($"HTTP/1.1 {status} {(HttpStatusCode)status}\r\n");
        foreach (var (name, value) in headers) text.Append($"{name}: {value}\r\n");
        text.Append($"Content-Length: {length}\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text.ToString()));
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
        _stop.Dispose();
    }
}
