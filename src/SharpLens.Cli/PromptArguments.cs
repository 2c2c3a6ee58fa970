using System.CommandLine;
using System.Globalization;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli;

/// <summary>The --prompt TEXT | --tokens IDS pair: a prompt as text (tokenized with the model's tokenizer, BOS first) or as token ids.</summary>
sealed class PromptArguments
{
    public Option<string?> Prompt { get; } = new("--prompt")
    {
        Description = "The prompt as text; it is tokenized with the model's tokenizer and BOS is put first. Built-in organisms have no tokenizer: use --tokens.",
    };

    public Option<string?> Tokens { get; } = new("--tokens")
    {
        Description = "The prompt as token ids, separated by spaces or commas, e.g. \"0 17 5 9\" (nothing is added).",
    };

    public Option<bool> Chat { get; } = new("--chat")
    {
        Description = "Wrap --prompt as one user message in the tokenizer's chat template (tokenizer_config.json's chat_template, with the generation prompt), as apply_chat_template does; the template puts in BOS itself.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Prompt);
        command.Options.Add(Tokens);
        command.Options.Add(Chat);
    }

    /// <summary>Token ids [1, pos] from whichever of --prompt / --tokens was given (exactly one must be).</summary>
    public Tensor Read(ParseResult parse, HookedTransformer model)
    {
        string? text = parse.GetValue(Prompt), ids = parse.GetValue(Tokens);
        if ((text is null) == (ids is null))
            throw new CliArgumentException("Give exactly one of --prompt TEXT or --tokens IDS.");
        if (ids is not null)
        {
            if (parse.GetValue(Chat)) throw new CliArgumentException("--chat wraps a --prompt TEXT in the chat template; it cannot be used with --tokens.");
            return ParseIds(ids, "--tokens").unsqueeze(0); // [1, pos]
        }
        if (!parse.GetValue(Chat)) return WithinContext(model, model.ToTokens(text!)); // [1, pos]
        string rendered = model.Tokenizer.ApplyChatTemplate([new Tokenization.ChatTemplates.ChatMessage("user", text!)], addGenerationPrompt: true);
        return WithinContext(model, model.ToTokens(rendered, prependBos: false)); // [1, pos]
    }

    /// <summary>
    /// The prompt's ids, refused by --prompt and the tokenizer when they are more than the model's n_ctx (the library's
    /// own refusal would name its argument, a tensor of ids, which the CLI tells as --tokens).
    /// </summary>
    static Tensor WithinContext(HookedTransformer model, Tensor tokens)
    {
        long n = tokens.shape[^1];
        if (n <= model.Config.NCtx) return tokens;
        tokens.Dispose();
        throw new CliArgumentException($"--prompt is {n} tokens long with the tokenizer of {model.Tokenizer.Name} (BOS included), but {model.Config.ModelName} " +
            $"accepts at most n_ctx = {model.Config.NCtx}: shorten the prompt (or check that this tokenizer is the model's own).");
    }

    /// <summary>Token ids [1, pos] for an encoder: --prompt is tokenized with [CLS] … [SEP]; --tokens are used as given.</summary>
    public Tensor Read(ParseResult parse, Models.Encoder.HookedEncoder model)
    {
        string? text = parse.GetValue(Prompt), ids = parse.GetValue(Tokens);
        if ((text is null) == (ids is null))
            throw new CliArgumentException("Give exactly one of --prompt TEXT or --tokens IDS.");
        if (ids is not null) return ParseIds(ids, "--tokens").unsqueeze(0); // [1, pos]
        var (tokens, mask, types) = model.ToTokens([text!]);
        mask.Dispose();
        types.Dispose();
        return tokens; // [1, pos]
    }

    /// <summary>Parses "1 2 3" or "1,2,3" into an int64 tensor [n].</summary>
    public static Tensor ParseIds(string ids, string option)
    {
        var parts = ids.Split([' ', ',', '\t'], StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new CliArgumentException($"{option} is empty: give token ids such as \"0 17 5 9\".");
        var values = parts.Select(p => long.TryParse(p, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v
            : throw new CliArgumentException($"{option}: '{p}' is not a token id (a whole number).")).ToArray();
        return tensor(values);
    }

    /// <summary>A readable label for a token: its text when the model has a tokenizer, else its id.</summary>
    public static string Describe(HookedTransformer model, long id) => Reports.LogitLensReport.TokenName(model, id);

    /// <summary>One token id from --X TEXT (must be a single token) or --X-token ID.</summary>
    public static long SingleToken(HookedTransformer model, string? text, long? id, string option)
    {
        if ((text is null) == (id is null)) throw new CliArgumentException($"Give exactly one of --{option} TEXT or --{option}-token ID.");
        if (id is long i)
        {
            if (i < 0 || i >= model.Config.DVocab) throw new CliArgumentException($"--{option}-token {i} is outside the vocabulary [0, {model.Config.DVocab - 1}].");
            return i;
        }
        try { return model.ToSingleToken(text!); }
        catch (Exception e) when (e is SharpLensException or ArgumentException or InvalidOperationException)
        {
            throw new CliArgumentException($"--{option} \"{text}\" must be exactly one token ({e.Message}). GPT-2 tokens usually start with a space: try \" {text!.Trim()}\", or give --{option}-token ID.");
        }
    }
}

/// <summary>The command line was unusable; the message says which option and how to fix it.</summary>
sealed class CliArgumentException(string message) : SharpLensArgumentException(null, message);
