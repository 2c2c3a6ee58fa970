using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Tokenization;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens tokenize`: a text's token ids as Hugging Face's tokenizer(text) gives them.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var modelOption = new Option<string>("--model")
        {
            Description = "A folder with tokenizer files (tokenizer.json, tokenizer.model, or vocab.json + merges.txt, with tokenizer_config.json; " +
                          "no weights or config.json needed, as AutoTokenizer.from_pretrained accepts), or any --model the other commands take.",
            Required = true,
        };
        var promptOption = new Option<string>("--prompt") { Description = "The text to tokenize.", Required = true };
        var jsonOption = new Option<bool>("--json") { Description = "Print one JSON object: \"ids\", \"tokens\" (vocabulary strings), \"decoded\" and \"tokenizer\"." };
        var command = new Command("tokenize",
            "Print the token ids of a text as Hugging Face's tokenizer(text)[\"input_ids\"] gives them (BOS / EOS as tokenizer_config.json " +
            "and tokenizer.json say).\n\nExample: sharplens tokenize --model ./gemma-tokenizer --prompt \"Hello world\" --json");
        command.Options.Add(modelOption);
        command.Options.Add(promptOption);
        command.Options.Add(jsonOption);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            string model = parse.GetValue(modelOption)!, text = parse.GetValue(promptOption)!;
            var result = Tokenize(model, text);
            Console.WriteLine(parse.GetValue(jsonOption)
                ? JsonSerializer.Serialize(result, TokenizeJson.Default.TokenizeResult)
                : string.Join(" ", result.Ids));
            return 0;
        }));
        return command;
    }

    /// <summary>The ids, token strings and decoding of a text with the tokenizer of a folder or model.</summary>
    public static TokenizeResult Tokenize(string model, string text)
    {
        ModelTokenizer tokenizer;
        if (Directory.Exists(model) && HuggingFaceTokenizerFiles.HasTokenizer(model)) tokenizer = HuggingFaceTokenizerFiles.Load(model);
        else
        {
            using var loaded = ModelArguments.Load(model, noProcessing: true, organismCache: null);
            tokenizer = loaded.Tokenizer;
        }
        var ids = tokenizer.EncodeWithSpecialTokens(text);
        return new TokenizeResult([.. ids], [.. tokenizer.TokenTexts(ids)], tokenizer.Decode(ids), tokenizer.Name);
    }
}

/// <summary>What `sharplens tokenize --json` prints.</summary>
public sealed record TokenizeResult(
    [property: JsonPropertyName("ids")] int[] Ids,
    [property: JsonPropertyName("tokens")] string[] Tokens,
    [property: JsonPropertyName("decoded")] string Decoded,
    [property: JsonPropertyName("tokenizer")] string Tokenizer);

[JsonSerializable(typeof(TokenizeResult))]
[JsonSourceGenerationOptions(WriteIndented = false)]
internal sealed partial class TokenizeJson : JsonSerializerContext;
