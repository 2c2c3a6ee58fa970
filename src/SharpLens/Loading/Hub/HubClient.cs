// How a file comes off the Hugging Face hub (as huggingface_hub does it):
//
//   HEAD {endpoint}/{repo}/resolve/{revision}/{path}          Authorization: Bearer <token> when one is set
//     X-Repo-Commit   the commit the revision resolves to
//     ETag            the git blob sha1 of a small file;  X-Linked-Etag: the sha256 of an LFS file's content
//     X-Linked-Size   an LFS file's size (Content-Length of a small one)
//     302 Location    for LFS files: the CDN URL holding the bytes (another host: the token is not sent there)
//     307 relative    a renamed repo: follow it and ask again
//     401/403 gated or private; 404 no such file (X-Error-Code: EntryNotFound, RepoNotFound, RevisionNotFound)
//   GET that URL (following redirects), with Range: bytes=<have>- to resume blobs/<etag>.incomplete;
//   a 206 answer appends, a 200 answer starts over. The finished file must have the advertised size and, for an
//   LFS file, the sha256 in its ETag; then it is renamed to blobs/<etag>.

using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace SharpLens.Loading.Hub;

/// <summary>How far a download has come, reported through <see cref="IProgress{T}"/>.</summary>
public sealed record DownloadProgress(string RepoId, string File, long BytesDone, long? TotalBytes);

/// <summary>What a HEAD request says about one file: the commit, the blob name, the size, and where the bytes are.</summary>
public sealed record HubFileMetadata(string Commit, string Etag, long? Size, Uri DownloadUrl);

/// <summary>Talks to the hub over HTTP: metadata (HEAD) and resumable, verified downloads into the cache.</summary>
public sealed partial class HubClient : IDisposable
{
    static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(60);
    const int MaxRedirects = 10;

    readonly HttpClient _http;
    readonly HubOptions _options;
    readonly Uri _endpoint;

    public HubClient(HubOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.Endpoint.TrimEnd('/') + "/");
        // Redirects are followed by hand: the token must not travel to the CDN's host.
        var handler = new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, ConnectTimeout = TimeSpan.FromSeconds(30) };
        _http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("sharplens/0.1");
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Hex();

    public Uri ResolveUrl(string repoId, string revision, string file) =>
        new(_endpoint, $"{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    /// <summary>The file's metadata, or null when the revision has no such file (HTTP 404).</summary>
    public async Task<HubFileMetadata?> HeadAsync(string repoId, string revision, string file, CancellationToken cancel = default)
    {
        var url = ResolveUrl(repoId, revision, file);
        for (int hop = 0; hop <= MaxRedirects; hop++)
        {
            using var response = await SendAsync(HttpMethod.Head, url, null, repoId, file, cancel).ConfigureAwait(false);
            int status = (int)response.StatusCode;
            if (status == 404)
            {
                string? code = Header(response, "X-Error-Code");
                if (code is "RepoNotFound" or "RevisionNotFound")
                    throw new HubDownloadException(repoId, null, code == "RepoNotFound"
                        ? "the hub has no such repo (check the spelling; private repos also need HF_TOKEN)."
                        : $"the repo has no revision '{revision}'.");
                return null;
            }
            if (status is >= 300 and < 400)
            {
                var location = response.Headers.Location ?? throw new HubDownloadException(repoId, file, $"HEAD {url} answered HTTP {status} without a Location.");
                if (!location.IsAbsoluteUri) { url = new Uri(url, location); continue; } // a renamed repo
                return Metadata(response, location, repoId, file);
            }
            return Metadata(response, url, repoId, file);
        }
        throw new HubDownloadException(repoId, file, $"more than {MaxRedirects} redirects.");
    }

    HubFileMetadata Metadata(HttpResponseMessage response, Uri downloadUrl, string repoId, string file)
    {
        string commit = Header(response, "X-Repo-Commit")
            ?? throw new HubDownloadException(repoId, file, $"{downloadUrl.Host} sent no X-Repo-Commit header; is HF_ENDPOINT ({_options.Endpoint}) a Hugging Face hub?");
        string etag = NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag")
            ?? throw new HubDownloadException(repoId, file, "the hub sent no ETag, so the file cannot be named in the cache."));
        if (etag.Length == 0 || etag.Contains('/') || etag.Contains('\\') || etag.Contains(".."))
            throw new HubDownloadException(repoId, file, $"the ETag '{etag}' cannot name a cache file.");
        long? size = long.TryParse(Header(response, "X-Linked-Size"), out long linked) ? linked : response.Content.Headers.ContentLength;
        return new HubFileMetadata(commit, etag, size, downloadUrl);
    }

    /// <summary>W/"abc" → abc, the way huggingface_hub names blobs.</summary>
    public static string NormalizeEtag(string etag) => (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    /// <summary>
    /// Brings the file into blobs/&lt;etag&gt; (unless it is there already), resuming a partial download, and checks
    /// its size and sha256. A broken connection keeps the partial file; bytes that fail the check are deleted.
    /// </summary>
    public async Task<string> DownloadAsync(HubCache cache, string file, HubFileMetadata meta, IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        string blob = cache.BlobPath(meta.Etag), partial = blob + ".incomplete";
        if (File.Exists(blob)) return blob;
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (meta.Size is long expected && have > expected) { File.Delete(partial); have = 0; }
        if (meta.Size is not long complete || have < complete)
            await FetchAsync(cache.RepoId, file, meta, partial, have, progress, cancel).ConfigureAwait(false);
        Verify(cache.RepoId, file, meta, partial);
        File.Move(partial, blob, overwrite: true);
        return blob;
    }

    async Task FetchAsync(string repoId, string file, HubFileMetadata meta, string partial, long have, IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        var url = meta.DownloadUrl;
        HttpResponseMessage response;
        for (int hop = 0; ; hop++)
        {
            response = await SendAsync(HttpMethod.Get, url, have > 0 ? have : null, repoId, file, cancel).ConfigureAwait(false);
            if ((int)response.StatusCode is >= 300 and < 400 && response.Headers.Location is { } location && hop < MaxRedirects)
            {
                response.Dispose();
                url = location.IsAbsoluteUri ? location : new Uri(url, location);
                continue;
            }
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable && have > 0)
            {
                response.Dispose(); // the partial file does not fit what is served now: start over
                File.Delete(partial);
                have = 0;
                continue;
            }
            break;
        }
        using (response)
        {
            int status = (int)response.StatusCode;
            if (status is 401 or 403) throw new HubAccessException(repoId, file, status, _options.Token is not null);
            if (!response.IsSuccessStatusCode) throw new HubDownloadException(repoId, file, $"GET {url} answered HTTP {status} {response.ReasonPhrase}.");
            bool append = response.StatusCode == HttpStatusCode.PartialContent;
            if (append && response.Content.Headers.ContentRange?.From != have)
                throw new HubDownloadException(repoId, file, $"asked to resume at byte {have}, the server sent a range starting at {response.Content.Headers.ContentRange?.From}.");
            if (!append) have = 0;

            await using var output = new FileStream(partial, append ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
            await using var body = await response.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            var buffer = new byte[1 << 16];
            progress?.Report(new DownloadProgress(repoId, file, have, meta.Size));
            try
            {
                while (true)
                {
                    idle.CancelAfter(ReadTimeout); // re-armed each read: a stalled connection fails, a slow one does not
                    int read = await body.ReadAsync(buffer, idle.Token).ConfigureAwait(false);
                    if (read == 0) break;
                    await output.WriteAsync(buffer.AsMemory(0, read), cancel).ConfigureAwait(false);
                    have += read;
                    progress?.Report(new DownloadProgress(repoId, file, have, meta.Size));
                }
            }
            catch (Exception e) when (e is IOException or HttpRequestException || (e is OperationCanceledException && !cancel.IsCancellationRequested))
            {
                throw new HubDownloadException(repoId, file, $"the transfer broke off after {have} of {meta.Size?.ToString() ?? "?"} bytes ({e.Message}). " +
                    $"The partial file {partial} is kept; calling again resumes it.", e);
            }
        }
    }

    static void Verify(string repoId, string file, HubFileMetadata meta, string partial)
    {
        long length = new FileInfo(partial).Length;
        if (meta.Size is long size && length != size)
        {
            File.Delete(partial);
            throw new HubIntegrityException(repoId, file, $"{size} bytes", $"{length} bytes");
        }
        if (!Sha256Hex().IsMatch(meta.Etag)) return; // a small file's ETag is a git sha1 of a header + content, not checked
        string actual;
        using (var stream = File.OpenRead(partial)) actual = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (actual != meta.Etag)
        {
            File.Delete(partial);
            throw new HubIntegrityException(repoId, file, $"sha256 {meta.Etag}", $"sha256 {actual}");
        }
    }

    async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, long? rangeFrom, string repoId, string file, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(method, url);
        // The token goes to the hub only, never to the CDN a download is redirected to.
        if (_options.Token is { } token && string.Equals(url.Authority, _endpoint.Authority, StringComparison.OrdinalIgnoreCase))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (rangeFrom is long from) request.Headers.Range = new RangeHeaderValue(from, null);
        request.Headers.AcceptEncoding.ParseAdd("identity");
        try
        {
            var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel).ConfigureAwait(false);
            if (method == HttpMethod.Head && (int)response.StatusCode is 401 or 403)
            {
                response.Dispose();
                throw new HubAccessException(repoId, file, (int)response.StatusCode, _options.Token is not null);
            }
            return response;
        }
        catch (HttpRequestException e)
        {
            throw new HubDownloadException(repoId, file, $"{method} {url} failed: {e.Message}. Check the network, or set HF_HUB_OFFLINE=1 to use the cache only.", e);
        }
    }

    static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    public void Dispose() => _http.Dispose();
}
