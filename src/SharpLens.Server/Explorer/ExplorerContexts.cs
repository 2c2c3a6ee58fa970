using SharpLens.Corpora;
using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes.Data;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Server.Explorer;

/// <summary>
/// The contexts the Features pages read — a feature's max-activating examples, its activation histogram and quantile
/// intervals — and where they came from, said on the page. From real text when the model has a tokenizer
/// (<see cref="FromText"/>: the Brown Corpus, a plain-text or JSON Lines file, packed as the SAE commands pack it);
/// otherwise repeated random sequences (<see cref="RepeatedRandom"/>), which any model can read and an induction
/// circuit makes sense of.
/// </summary>
public sealed class ExplorerContexts : IDisposable
{
    ExplorerContexts(Tensor tokens, string source, string description, IReadOnlyList<int> excluded) =>
        (Tokens, Source, Description, ExcludedTokenIds) = (tokens.DetachFromDisposeScope(), source, description, excluded);

    /// <summary>[contexts, pos] int64 token ids.</summary>
    public Tensor Tokens { get; }
    /// <summary>"text" (a corpus, tokenized with the model's tokenizer) or "random" (repeated random sequences).</summary>
    public string Source { get; }
    /// <summary>One sentence for the page, e.g. "brown: 128 contexts of 64 tokens from 128 documents, tokenized with …".</summary>
    public string Description { get; }
    /// <summary>Ids a dashboard leaves out (BOS, padding; an encoder's [CLS], [SEP], [PAD]): they carry no word to interpret.</summary>
    public IReadOnlyList<int> ExcludedTokenIds { get; }

    public const int DefaultContexts = 128, DefaultContextSize = 64;

    /// <summary>
    /// Contexts from <paramref name="corpus"/> tokenized with the model's own tokenizer: a decoder's documents packed into
    /// rows of <paramref name="contextSize"/> tokens, BOS first (SAELens's packing, <see cref="Contexts.FromTexts"/>); an
    /// encoder's texts packed whole into [CLS] … [SEP] rows (<see cref="EncoderContexts.Pack"/>). To mix a corpus's
    /// genres, documents are visited spread over the whole corpus and each gives at most its share of rows.
    /// </summary>
    public static ExplorerContexts FromText(TextCorpus corpus, HookedTransformer? decoder = null, HookedEncoder? encoder = null,
        int contexts = DefaultContexts, int contextSize = DefaultContextSize)
    {
        if ((decoder is null) == (encoder is null)) throw new ArgumentException("Give exactly one of a decoder or an encoder.", nameof(decoder));
        if (contexts < 1) throw new ArgumentOutOfRangeException(nameof(contexts), contexts, "At least one context.");
        var config = ((HookedRootModule?)decoder ?? encoder!).Config;
        contextSize = Math.Min(contextSize, config.NCtx);
        var documents = corpus.Documents;
        int perDocument = Math.Max(1, (int)Math.Ceiling(contexts / (double)documents.Count));
        var order = Spread(documents.Count, Math.Max(1, (int)Math.Ceiling(contexts / (double)perDocument)));
        var rows = new List<long[]>(contexts);
        var used = new HashSet<int>();
        string tokenizerName;
        IReadOnlyList<int> excluded;
        if (encoder is not null)
        {
            var tokenizer = encoder.Tokenizer ?? throw new ExplorerSetupException(
                $"--corpus {corpus.Name}: the encoder {config.ModelName} has no tokenizer (vocab.txt) to read the text with; leave out --corpus to use repeated random token sequences.");
            tokenizerName = "its WordPiece vocabulary";
            excluded = EncoderActivations.SpecialTokenIds(tokenizer);
            foreach (int d in order.Concat(Enumerable.Range(0, documents.Count)))
            {
                if (rows.Count >= contexts) break;
                if (!used.Add(d)) continue;
                rows.AddRange(EncoderContexts.Pack(Sentences(documents[d].Text), tokenizer, contextSize).Take(Math.Min(perDocument, contexts - rows.Count)));
            }
        }
        else
        {
            var tokenizer = TokenizerOf(decoder!) ?? throw new ExplorerSetupException(
                $"--corpus {corpus.Name}: {config.ModelName} has no tokenizer, so its token ids mean nothing as text; leave out --corpus to use repeated random token sequences, or load a model with a tokenizer.");
            tokenizerName = $"the model's tokenizer ({tokenizer.Name})";
            bool bos = tokenizer.BosTokenId is not null;
            excluded = [.. new int?[] { config.BosTokenId, tokenizer.BosTokenId, tokenizer.PadTokenId }.OfType<int>().Distinct()];
            foreach (int d in order.Concat(Enumerable.Range(0, documents.Count)))
            {
                if (rows.Count >= contexts) break;
                if (!used.Add(d)) continue;
                rows.AddRange(Contexts.FromTexts([documents[d].Text], tokenizer, contextSize, prependBos: bos).Take(Math.Min(perDocument, contexts - rows.Count)));
            }
        }
        if (rows.Count == 0)
            throw new ExplorerSetupException($"--corpus {corpus.Name}: the text is shorter than one context of {contextSize} tokens; give more text.");
        int fromDocuments = used.Count;
        var tokens = Contexts.Batches(rows, rows.Count).First(); // [contexts, pos]
        string description = $"{corpus.Name}: {rows.Count} contexts of {contextSize} tokens from {fromDocuments} of its {documents.Count} documents, tokenized with {tokenizerName}";
        return new ExplorerContexts(tokens, "text", description, excluded);
    }

    /// <summary>
    /// The fallback for a model without a tokenizer: 64 sequences BOS, r₁…r_n, r₁…r_n of random tokens (seed 0), as the
    /// head detectors use; <paramref name="why"/> says on the page why no text was read.
    /// </summary>
    public static ExplorerContexts RepeatedRandom(ModelConfig config, string why)
    {
        int half = Math.Max(2, Math.Min(20, (config.NCtx - 1) / 2));
        var tokens = Techniques.HeadDetectors.RepeatedRandomTokens(config, half, 64, new Generator(0)); // [64, 1 + 2·half]
        // BOS stands only at position 0, which dashboards skip anyway.
        return new ExplorerContexts(tokens, "random", $"64 repeated random sequences of {tokens.shape[1]} tokens (seed 0), not text: {why}", []);
    }

    /// <summary>Contexts given as token ids (tests, scripts).</summary>
    public static ExplorerContexts FromTokens(Tensor tokens, string description, IReadOnlyList<int>? excludedTokenIds = null) =>
        new(tokens, "tokens", description, excludedTokenIds ?? []);

    /// <summary>The decoder's tokenizer: the one set on it (a Hugging Face folder's tokenizer.json) or the one its config names; null when it has neither.</summary>
    public static ModelTokenizer? TokenizerOf(HookedTransformer decoder)
    {
        try { return decoder.Tokenizer; }
        catch (MissingTokenizerException) { return null; }
    }

    /// <summary><paramref name="count"/> document indices spread evenly over <paramref name="n"/> (0, n/count, 2n/count, …).</summary>
    static IEnumerable<int> Spread(int n, int count) =>
        Enumerable.Range(0, Math.Min(n, count)).Select(i => (int)((long)i * n / Math.Min(n, count))).Distinct();

    /// <summary>An encoder reads sentences packed whole into rows: a document split at sentence ends.</summary>
    static IEnumerable<string> Sentences(string text) =>
        System.Text.RegularExpressions.Regex.Split(text, @"(?<=[.!?])\s+").Where(s => s.Trim().Length > 0);

    public void Dispose() => Tokens.Dispose();
}
