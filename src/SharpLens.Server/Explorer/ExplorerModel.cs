using System.Globalization;
using SharpLens.Attribution;
using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Server.Explorer;

/// <summary>An SAE (or transcoder) the Explorer shows features of, spliced in at <see cref="Hook"/>.</summary>
public sealed record ExplorerSae(string Name, Sae Sae, string Hook);

/// <summary>
/// What the Explorer holds in memory, chosen at start-up (requests never name files): exactly one of a decoder or an
/// encoder, the SAEs to show, an optional replacement model for attribution graphs, and the contexts feature pages
/// are computed over. Turns the prompts of requests into token ids, within the limits.
/// </summary>
public sealed class ExplorerModel : IDisposable
{
    public ExplorerModel(string name, HookedTransformer? decoder = null, HookedEncoder? encoder = null, IReadOnlyList<ExplorerSae>? saes = null,
        ReplacementModel? graphModel = null, ExplorerContexts? contexts = null, Examples? examples = null, string? transcodersDescription = null)
    {
        if ((decoder is null) == (encoder is null)) throw new ArgumentException("Give the Explorer exactly one of a decoder or an encoder.", nameof(decoder));
        (Name, Decoder, Encoder, GraphModel) = (name, decoder, encoder, graphModel);
        Saes = saes ?? [];
        foreach (var s in Saes) Module.GetHookPoint(s.Hook); // a wrong hook fails at start-up, not on the first request
        Config = Module.Config;
        // A Hugging Face folder's tokenizer.json is set on the model, not named in its config: ask the model itself.
        HasTokenizer = encoder is not null ? encoder.Tokenizer is not null : ExplorerContexts.TokenizerOf(decoder!) is not null;
        // Feature pages need contexts: text when the caller gives a corpus, else repeated random sequences, which every
        // model can read (the page says which).
        Contexts = contexts ?? ExplorerContexts.RepeatedRandom(Config, HasTokenizer
            ? "no corpus was given (start with --corpus brown, or a .txt/.jsonl file, for text)"
            : $"{name} has no tokenizer, so it cannot read text");
        Examples = examples ?? DefaultExamples();
        TranscodersDescription = graphModel is null ? null : transcodersDescription
            ?? $"{graphModel.Transcoders.NLayers} layers × {graphModel.Transcoders.DTranscoder} features, {(graphModel.Transcoders.CrossLayer ? "cross-layer" : "per-layer")}, reading {graphModel.InputHookSuffix}";
    }

    public string Name { get; }
    public HookedTransformer? Decoder { get; }
    public HookedEncoder? Encoder { get; }
    public HookedRootModule Module => (HookedRootModule?)Decoder ?? Encoder!;
    public ModelConfig Config { get; }
    public IReadOnlyList<ExplorerSae> Saes { get; }
    /// <summary>The unprocessed model with transcoders, for attribution graphs; null when none were given.</summary>
    public ReplacementModel? GraphModel { get; }
    /// <summary>The contexts feature pages read, and where they came from.</summary>
    public ExplorerContexts Contexts { get; }
    /// <summary>[contexts, pos] token ids feature pages read.</summary>
    public Tensor Corpus => Contexts.Tokens;
    public string CorpusDescription => Contexts.Description;
    /// <summary>What the Graph page's transcoders are, in a line; null without them.</summary>
    public string? TranscodersDescription { get; }
    public Examples Examples { get; }
    /// <summary>One heavy job at a time on this model.</summary>
    public ModelLane Lane { get; } = new();

    public bool IsEncoder => Encoder is not null;
    public bool HasTokenizer { get; }

    /// <summary>The decoder, or a 400 saying this page needs one.</summary>
    public HookedTransformer RequireDecoder(string what) => Decoder ?? throw new ExplorerRequestException(
        $"{what} needs a decoder (a model that predicts the next token); {Name} is an encoder. Start the Explorer with a decoder, e.g. --model induction.");

    /// <summary>Token ids of a request's prompt, checked against the limits.</summary>
    public long[] Tokens(PromptInput input, ExplorerOptions limits, string field = "prompt")
    {
        if ((input.Prompt is null) == (input.Tokens is null))
            throw new ExplorerRequestException($"Give exactly one of \"prompt\" (text{(HasTokenizer ? "" : ", here token ids such as \"0 5 9 12 5 9\"")}) or \"tokens\" (an array of ids).");
        return input.Tokens is { } ids ? Check(ids, limits, "tokens") : Tokens(input.Prompt!, limits, field);
    }

    /// <summary>Token ids of prompt text (or, without a tokenizer, of ids written as text).</summary>
    public long[] Tokens(string text, ExplorerOptions limits, string field)
    {
        if (text.Length > limits.MaxPromptChars)
            throw new ExplorerRequestException($"\"{field}\" is {text.Length} characters long; the limit is {limits.MaxPromptChars}. Send a shorter prompt.");
        if (string.IsNullOrWhiteSpace(text)) throw new ExplorerRequestException($"\"{field}\" is empty: give the prompt{(HasTokenizer ? " text" : " as token ids such as \"0 5 9 12 5 9\"")}.");
        long[] ids;
        if (!HasTokenizer) ids = ParseIds(text, field);
        else if (Encoder is { } encoder) ids = [.. encoder.Tokenizer!.Encode(text).Select(i => (long)i)];
        else
        {
            using var t = Decoder!.ToTokens(text); // [1, pos]
            ids = t[0].data<long>().ToArray();
        }
        return Check(ids, limits, field);
    }

    long[] Check(long[] ids, ExplorerOptions limits, string field)
    {
        int most = Math.Min(limits.MaxPromptTokens, Config.NCtx);
        if (ids.Length == 0) throw new ExplorerRequestException($"\"{field}\" has no tokens.");
        if (ids.Length > most)
            throw new ExplorerRequestException($"\"{field}\" is {ids.Length} tokens long; the limit is {most} ({(most == Config.NCtx ? "the model's context" : "the server's prompt limit")}). Send a shorter prompt.");
        foreach (long id in ids)
            if (id < 0 || id >= Config.DVocab) throw new ExplorerRequestException($"\"{field}\": token id {id} is outside the vocabulary [0, {Config.DVocab - 1}].");
        return ids;
    }

    static long[] ParseIds(string text, string field) =>
        [.. text.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(p => long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v
            : throw new ExplorerRequestException($"\"{field}\": '{(p.Length > 20 ? p[..20] + "…" : p)}' is not a token id. This model has no tokenizer: give whole numbers separated by spaces, e.g. \"0 5 9 12 5 9\"."))];

    /// <summary>One token from a request's answer field: exactly one token of text, or (without a tokenizer) an id.</summary>
    public long Token(string text, string field)
    {
        if (!HasTokenizer || (text.Length > 1 && text[0] == '#' && long.TryParse(text[1..], out _)))
        {
            var ids = ParseIds(text.TrimStart('#'), field);
            if (ids.Length != 1) throw new ExplorerRequestException($"\"{field}\" must be one token id; got {ids.Length}.");
            if (ids[0] < 0 || ids[0] >= Config.DVocab) throw new ExplorerRequestException($"\"{field}\": token id {ids[0]} is outside the vocabulary [0, {Config.DVocab - 1}].");
            return ids[0];
        }
        try { return RequireDecoder("A single answer token").ToSingleToken(text); }
        catch (Exception e) when (e is SharpLensException or ArgumentException or InvalidOperationException && e is not ExplorerRequestException)
        {
            throw new ExplorerRequestException($"\"{field}\": \"{text}\" is not exactly one token ({e.Message.Split('\n')[0]}). GPT-2-style tokens usually start with a space; or give an id as #123.");
        }
    }

    /// <summary>How each token reads: its text piece when there is a tokenizer, else its id.</summary>
    public IReadOnlyList<string> Strings(long[] ids)
    {
        if (!HasTokenizer) return [.. ids.Select(i => i.ToString(CultureInfo.InvariantCulture))];
        if (Encoder is { } encoder) return [.. ids.Select(i => encoder.Tokenizer!.Piece((int)i))];
        using var t = tensor(ids).unsqueeze(0);
        return Decoder!.ToStrTokens(t);
    }

    public string Text(long id) => Strings([id])[0];

    /// <summary>Continuation text: decoded when there is a tokenizer, else the ids.</summary>
    public string Decode(long[] ids)
    {
        if (!HasTokenizer) return string.Join(" ", ids);
        if (Encoder is { } encoder) return encoder.Tokenizer!.Decode(ids.Select(i => (int)i));
        using var t = tensor(ids).unsqueeze(0);
        return Decoder!.ToText(t);
    }

    Examples DefaultExamples()
    {
        if (HasTokenizer)
            return new Examples(IsEncoder ? "The cat sat on the mat." : "When Mary and John went to the store, John gave a drink to",
                "When Mary and John went to the store, John gave a drink to", "When Mary and John went to the store, Mary gave a drink to", " Mary", " John");
        // Without a tokenizer: a repeated random sequence, whose second half an induction circuit predicts.
        var rng = new Random(3);
        int half = Math.Max(2, Math.Min(8, (Config.NCtx - 1) / 2));
        long bos = Config.BosTokenId ?? 0;
        var block = Enumerable.Range(0, half).Select(_ => (long)rng.Next(1, Config.DVocab)).ToArray();
        long[] prompt = [bos, .. block, .. block[..^1]];
        long answer = block[^1], wrong = Enumerable.Range(1, Config.DVocab - 1).Select(i => (long)i).First(t => !prompt.Contains(t));
        var corrupted = (long[])prompt.Clone();
        corrupted[half] = wrong; // the first copy of the answer replaced: induction now predicts `wrong`
        return new Examples(string.Join(" ", prompt), string.Join(" ", prompt), string.Join(" ", corrupted), answer.ToString(CultureInfo.InvariantCulture), wrong.ToString(CultureInfo.InvariantCulture));
    }

    public void Dispose()
    {
        Contexts.Dispose();
        Lane.Dispose();
    }
}
