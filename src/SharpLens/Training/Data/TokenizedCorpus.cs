using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Corpora;
using SharpLens.Organisms;
using SharpLens.Tokenization;

namespace SharpLens.Training.Data;

/// <summary>How documents are separated in the token stream.</summary>
public enum DocumentSeparators
{
    /// <summary>GPT-2: <c>&lt;|endoftext|&gt;</c> before every document, so each starts after one (it is GPT-2's BOS as well as its EOS).</summary>
    Gpt2,
    /// <summary>Llama: every document is BOS, its text, EOS.</summary>
    Llama,
}

/// <summary>Which tokenizer a corpus is tokenized with: GPT-2's, a byte-level BPE trained on it, or a model folder's tokenizer.json.</summary>
/// <param name="VocabSize">For a trained byte-level BPE: ids in all (e.g. 4096).</param>
/// <param name="Folder">A folder holding tokenizer.json (and tokenizer_config.json), e.g. a base model's.</param>
public sealed record TokenizerChoice(int? VocabSize, string? Folder = null)
{
    public static TokenizerChoice Gpt2 => new((int?)null);
    public static TokenizerChoice Bpe(int vocabSize) => new(vocabSize);
    public static TokenizerChoice FromFolder(string folder) => new(null, Path.GetFullPath(folder));
    public override string ToString() => VocabSize is int v ? $"bpe-{v}" : Folder is not null ? "tokenizer.json" : "gpt2";
}

/// <summary>
/// A corpus tokenized once and cached: its tokenizer and memory-mapped train / validation <see cref="TokenShard"/>s.
/// <code>
/// &lt;cache&gt;/tokenizers/bpe-&lt;hash&gt;/    tokenizer.json, tokenizer_config.json, special_tokens_map.json (trained on the train split)
/// &lt;cache&gt;/token-shards/&lt;hash&gt;/   train.bin, val.bin (uint16), shards.json (documents, tokens and words per split)
/// </code>
/// Both hashes cover the corpus text, the tokenizer, the separators and the split, so nothing stale is reused.
/// </summary>
public sealed class TokenizedCorpus : IDisposable
{
    const string FormatVersion = "1";
    public const string TrainFile = "train.bin", ValidationFile = "val.bin", MetaFile = "shards.json";

    TokenizedCorpus(TextCorpus corpus, ModelTokenizer tokenizer, string? tokenizerFolder, DocumentSeparators separators, TokenShard train, TokenShard validation, string folder) =>
        (Corpus, Tokenizer, TokenizerFolder, Separators, Train, Validation, Folder) = (corpus, tokenizer, tokenizerFolder, separators, train, validation, folder);

    public TextCorpus Corpus { get; }
    public ModelTokenizer Tokenizer { get; }
    /// <summary>The folder holding the tokenizer's Hugging Face files, copied into saved models; null for the built-in GPT-2 tokenizer.</summary>
    public string? TokenizerFolder { get; }
    public DocumentSeparators Separators { get; }
    public TokenShard Train { get; }
    public TokenShard Validation { get; }
    public string Folder { get; }
    public int BosTokenId => Tokenizer.BosTokenId!.Value;
    public int EosTokenId => Tokenizer.EosTokenId!.Value;

    /// <summary>The special tokens each separator style's tokenizer has (its BOS first, its EOS last).</summary>
    public static IReadOnlyList<string> SpecialTokensFor(DocumentSeparators separators) => separators == DocumentSeparators.Gpt2
        ? ["<|endoftext|>"]
        : ["<|begin_of_text|>", "<|end_of_text|>"];

    /// <summary>Tokenizes <paramref name="corpus"/> (training the tokenizer first if needed), or reuses the cached result.</summary>
    public static TokenizedCorpus Prepare(TextCorpus corpus, TokenizerChoice tokenizerChoice, DocumentSeparators separators,
        double validationFraction = 0.05, string? cacheRoot = null, IProgress<string>? log = null)
    {
        var (trainDocuments, validationDocuments) = corpus.Split(validationFraction);
        var (tokenizer, tokenizerFolder) = tokenizerChoice switch
        {
            { VocabSize: int vocabSize } => TrainedTokenizer(corpus, trainDocuments, vocabSize, separators, validationFraction, cacheRoot, log),
            { Folder: string given } => (ModelTokenizer.FromTokenizerJson(Path.Combine(given, "tokenizer.json")), given),
            _ => (ModelTokenizer.Gpt2(), (string?)null),
        };
        if (tokenizerChoice is { VocabSize: null, Folder: null } && separators != DocumentSeparators.Gpt2)
            throw new CorpusInputException("GPT-2's tokenizer has only <|endoftext|>, so it separates documents GPT-2's way; use --arch gpt2 with it, or train a tokenizer (--vocab-size) for llama.");

        string tokenizerHash = tokenizerFolder is null ? "gpt2" : HashFile(Path.Combine(tokenizerFolder, "tokenizer.json"));
        string key = Hash($"{FormatVersion}\n{corpus.Fingerprint}\n{tokenizerHash}\n{separators}\n{validationFraction:R}");
        string folder = Path.Combine(OrganismCache.Root(cacheRoot), "token-shards", key[..16]);
        if (!File.Exists(Path.Combine(folder, MetaFile)))
        {
            log?.Report($"Tokenizing {corpus.Name}: {trainDocuments.Count} training and {validationDocuments.Count} validation documents");
            OrganismCache.WriteAtomically(folder, temporary =>
            {
                var train = WriteSplit(Path.Combine(temporary, TrainFile), trainDocuments, tokenizer, separators);
                var validation = WriteSplit(Path.Combine(temporary, ValidationFile), validationDocuments, tokenizer, separators);
                var meta = new ShardsMeta(FormatVersion, corpus.Name, tokenizerChoice.ToString(), separators.ToString().ToLowerInvariant(), validationFraction, train, validation);
                File.WriteAllText(Path.Combine(temporary, MetaFile), JsonSerializer.Serialize(meta, TrainingDataJson.Default.ShardsMeta));
            });
        }
        var saved = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(folder, MetaFile)), TrainingDataJson.Default.ShardsMeta)
            ?? throw new TokenShardException(folder, $"{Path.Combine(folder, MetaFile)} is empty; delete {folder} to tokenize again.");
        var trainShard = TokenShard.Open(Path.Combine(folder, TrainFile), saved.Train.Words);
        var validationShard = TokenShard.Open(Path.Combine(folder, ValidationFile), saved.Validation.Words);
        return new TokenizedCorpus(corpus, tokenizer, tokenizerFolder, separators, trainShard, validationShard, folder);
    }

    /// <summary>The byte-level BPE trained on the corpus's training documents, from the cache or trained now.</summary>
    static (ModelTokenizer, string) TrainedTokenizer(TextCorpus corpus, IReadOnlyList<TextDocument> trainDocuments, int vocabSize,
        DocumentSeparators separators, double validationFraction, string? cacheRoot, IProgress<string>? log)
    {
        var specials = SpecialTokensFor(separators);
        var settings = new ByteLevelBpeSettings(vocabSize, specials).Validated();
        string key = Hash($"{FormatVersion}\n{corpus.Fingerprint}\n{validationFraction:R}\n{vocabSize}\n{string.Join("\n", specials)}");
        string folder = Path.Combine(OrganismCache.Root(cacheRoot), "tokenizers", $"bpe-{vocabSize}-{key[..12]}");
        if (!File.Exists(Path.Combine(folder, "tokenizer.json")))
        {
            log?.Report($"Training a byte-level BPE tokenizer ({vocabSize} ids) on {trainDocuments.Count} documents of {corpus.Name}");
            var bpe = ByteLevelBpeTrainer.Train(trainDocuments.Select(d => d.Text), settings);
            OrganismCache.WriteAtomically(folder, temporary => bpe.SaveTo(temporary, bosToken: specials[0], eosToken: specials[^1], modelMaxLength: 1 << 20,
                tokenizerClass: separators == DocumentSeparators.Gpt2 ? "GPT2TokenizerFast" : "PreTrainedTokenizerFast"));
        }
        return (ModelTokenizer.FromTokenizerJson(Path.Combine(folder, "tokenizer.json")), folder);
    }

    static SplitMeta WriteSplit(string path, IReadOnlyList<TextDocument> documents, ModelTokenizer tokenizer, DocumentSeparators separators)
    {
        if (tokenizer.VocabSize > ushort.MaxValue + 1)
            throw new TokenShardException(path, $"{tokenizer.Name} has {tokenizer.VocabSize} ids; token shards hold uint16 ids (at most 65,536).");
        int bos = tokenizer.BosTokenId ?? throw new TokenShardException(path, $"{tokenizer.Name} has no BOS token to separate documents with.");
        int eos = tokenizer.EosTokenId ?? bos;
        long tokens = 0, words = 0;
        using var stream = new BufferedStream(File.Create(path), 1 << 20);
        void Put(int id) { stream.WriteByte((byte)id); stream.WriteByte((byte)(id >> 8)); tokens++; } // little-endian uint16
        foreach (var document in documents)
        {
            Put(bos); // GPT-2: the <|endoftext|> that precedes each document; Llama: BOS
            foreach (int id in tokenizer.Encode(document.Text)) Put(id);
            if (separators == DocumentSeparators.Llama) Put(eos);
            words += document.Text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        }
        return new SplitMeta(documents.Count, tokens, words);
    }

    static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    static string HashFile(string path) { using var f = File.OpenRead(path); return Convert.ToHexStringLower(SHA256.HashData(f)); }

    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
    }
}

/// <summary>shards.json: what the shards hold.</summary>
public sealed record ShardsMeta(string Version, string Corpus, string Tokenizer, string Separators, double ValidationFraction, SplitMeta Train, SplitMeta Validation);

/// <summary>One split's size: documents, tokens (separators included), whitespace-separated words.</summary>
public sealed record SplitMeta(int Documents, long Tokens, long Words);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(ShardsMeta))]
[JsonSerializable(typeof(LanguageModels.LanguageModelRecord))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(LanguageModels.LanguageModelFindings))]
public sealed partial class TrainingDataJson : JsonSerializerContext;
