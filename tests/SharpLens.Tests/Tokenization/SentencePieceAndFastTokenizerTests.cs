using System.Text.Json;
using SharpLens.Models;
using SharpLens.Tokenization;
using SharpLens.Tokenization.SentencePiece;
using Xunit.Abstractions;

namespace SharpLens.Tests.Tokenization;

/// <summary>
/// SentencePiece tokenizer.model folders and byte-fallback tokenizer.json folders against the ids the sentencepiece
/// library gave (scripts/golden/make_tokenizer_fixtures.py): whitespace runs, digits, accents, CJK, emoji through
/// byte fallback, newlines, user-defined symbols, and add_bos_token / add_eos_token.
/// </summary>
public class SentencePieceAndFastTokenizerTests(ITestOutputHelper output)
{
    static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", name);

    sealed record Case(string Text, int[] Ids, string[] Pieces, string Decoded);

    static List<Case> Cases(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Folder(name), "expected.json")));
        return [.. doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!,
            [.. c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32())],
            [.. c.GetProperty("pieces").EnumerateArray().Select(p => p.GetString()!)],
            c.GetProperty("decoded").GetString()!))];
    }

    [Theory]
    [InlineData("spm-llama", "tokenizer.model")]
    [InlineData("spm-gemma", "tokenizer.model")]
    [InlineData("spm-collapse", "tokenizer.model")]
    [InlineData("json-llama", "tokenizer.json")]
    [InlineData("json-gemma", "tokenizer.json")]
    [InlineData("both-llama", "tokenizer.json")]
    public void Ids_are_exactly_the_reference_ids(string folder, string file)
    {
        var tokenizer = HuggingFaceTokenizerFiles.Load(Folder(folder));
        Assert.EndsWith(file, tokenizer.Name);
        var cases = Cases(folder);
        int wrong = 0;
        foreach (var c in cases)
        {
            var ids = tokenizer.EncodeWithSpecialTokens(c.Text).ToArray();
            if (!ids.SequenceEqual(c.Ids))
            {
                wrong++;
                output.WriteLine($"{JsonSerializer.Serialize(c.Text)}: want [{string.Join(", ", c.Ids)}] got [{string.Join(", ", ids)}]");
            }
        }
        output.WriteLine($"{folder}: {cases.Count - wrong} of {cases.Count} texts exact");
        Assert.True(cases.Count >= 60, "the fixture should hold the generated sentences");
        Assert.Equal(0, wrong);
    }

    [Theory]
    [InlineData("spm-llama")]
    [InlineData("spm-gemma")]
    [InlineData("spm-collapse")]
    public void Sentencepiece_pieces_and_decoding_match(string folder)
    {
        var bpe = new SentencePieceBpe(SentencePieceModelFile.Read(Path.Combine(Folder(folder), "tokenizer.model")));
        foreach (var c in Cases(folder))
        {
            var ids = bpe.Encode(c.Text);
            Assert.Equal(c.Pieces, ids.Select(bpe.PieceOf).ToArray());
            Assert.Equal(c.Decoded, bpe.Decode(ids));
        }
    }

    [Fact]
    public void Byte_fallback_user_defined_symbols_and_the_dummy_prefix_are_as_sentencepiece_has_them()
    {
        var llama = HuggingFaceTokenizerFiles.Load(Folder("spm-llama"));
        var ids = llama.Encode("😀");
        Assert.Equal(["▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>"], llama.TokenTexts(ids)); // four UTF-8 bytes after the dummy prefix
        Assert.Equal("😀", llama.Decode(ids));
        Assert.Contains("<start_of_turn>", llama.TokenTexts(llama.Encode("<start_of_turn>user")));
        var gemma = HuggingFaceTokenizerFiles.Load(Folder("spm-gemma"));
        Assert.NotEqual("▁", gemma.TokenTexts(gemma.Encode("Hello"))[0]); // no dummy prefix
        var withSpecials = gemma.EncodeWithSpecialTokens("Hello");
        Assert.Equal((1, 2), (withSpecials[0], withSpecials[^1])); // add_bos_token and add_eos_token
        Assert.Equal("<s>Hello</s>", gemma.Decode(withSpecials));
    }

    [Fact]
    public void A_file_that_is_not_a_sentencepiece_protobuf_is_refused_naming_it()
    {
        string path = Path.Combine(Folder("not-sentencepiece"), "tokenizer.model");
        var e = Assert.Throws<TokenizerFilesException>(() => HuggingFaceTokenizerFiles.Load(Folder("not-sentencepiece")));
        Assert.Equal(path, e.Path);
        Assert.Contains("not a SentencePiece model", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void A_tokenizer_larger_than_the_embedding_is_refused_naming_the_file_and_vocab_size()
    {
        using var folder = new SharpLens.Tests.Loading.TempFolder();
        string zoo = Path.Combine(AppContext.BaseDirectory, "Fixtures", "zoo", "qwen3-tied-f32");
        foreach (var file in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(zoo, file), folder.File(file));
        File.Copy(Path.Combine(Folder("spm-llama"), "tokenizer.model"), folder.File("tokenizer.model")); // 420 ids, d_vocab 101
        var e = Assert.Throws<TokenizerFilesException>(() => HookedTransformer.FromPretrained(folder.Path));
        Assert.Contains("tokenizer.model", e.Message);
        Assert.Contains("vocab_size", e.Message);
        Assert.Contains("420", e.Message);
    }
}

public class TokenizeCommandTests
{
    [Fact]
    public void Tokenize_reads_a_folder_of_tokenizer_files_only()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "spm-llama");
        var result = SharpLens.Cli.Commands.TokenizeCommand.Tokenize(folder, "Hello world 42");
        Assert.Equal(1, result.Ids[0]); // <s>: add_bos_token
        Assert.Equal(result.Ids.Length, result.Tokens.Length);
        Assert.Equal("<s>", result.Tokens[0]);
        Assert.Contains("▁world", result.Tokens);
        Assert.Equal(["4", "2"], result.Tokens[^2..]); // split_digits
        Assert.Equal(0, SharpLens.Cli.Commands.TokenizeCommand.Create().Parse(["--model", folder, "--prompt", "naïve 東京", "--json"]).Invoke());
    }
}
