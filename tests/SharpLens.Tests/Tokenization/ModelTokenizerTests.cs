using SharpLens.Tokenization;

namespace SharpLens.Tests.Tokenization;

public class ModelTokenizerTests
{
    static readonly ModelTokenizer Gpt2 = ModelTokenizer.Gpt2();

    /// <summary>Texts with GPT-2 ids published by others, each with its source.</summary>
    public static TheoryData<string, int[]> PublishedGpt2Ids => new()
    {
        // TransformerLens's main demo prompt.
        { "Hello world! The Eiffel Tower is in", [15496, 995, 0, 383, 412, 733, 417, 8765, 318, 287] },
        // openai/tiktoken tests/test_encoding.py, test_simple (gpt2 encoding).
        { "hello world", [31373, 995] },
        { "hello <|endoftext|>", [31373, 220, 50256] },
        // openai/tiktoken tests/test_encoding.py, test_simple_repeated: digits merge in runs.
        { "0000000000000000", [25645] },
        { "00000000000000000", [8269, 10535, 830] },
        // karpathy/minGPT mingpt/bpe.py __main__: contractions, digits, and an emoji split into byte tokens.
        { "Hello!! I'm Andrej Karpathy. It's 2022. w00t :D 🤗",
          [15496, 3228, 314, 1101, 10948, 73, 509, 5117, 10036, 13, 632, 338, 33160, 13, 266, 405, 83, 1058, 35, 12520, 97, 245] },
        // OpenAI community forum, "Are spaces and new lines counts as tokens?" (GPT-3 = GPT-2 tokenizer): a blank
        // line before ``` is two 198s, because "\s+(?!\S)" leaves the last newline to stand alone.
        { "Line 1\nLine 2\\n\nLine 3\\r\nLine 4\\r\\n\nLine 5\n\n```\nLine a\nLine b\n```\n",
          [13949, 352, 198, 13949, 362, 59, 77, 198, 13949, 513, 59, 81, 198, 13949, 604, 59, 81, 59, 77, 198, 13949, 642, 198, 198, 15506, 63, 198, 13949, 257, 198, 13949, 275, 198, 15506, 63, 198] },
        { "hello goodbye hello", [31373, 24829, 23748] },
    };

    [Theory]
    [MemberData(nameof(PublishedGpt2Ids))]
    public void Gpt2_encodes_published_examples_to_their_published_ids(string text, int[] expected)
    {
        Assert.Equal(expected, Gpt2.Encode(text));
        Assert.Equal(text, Gpt2.Decode(expected));
    }

    [Theory]
    [InlineData("café")]
    [InlineData(" naïve café\n\n  x\t\r\n")]
    [InlineData("東京 ∑ 12345 don't they'll")]
    [InlineData("😀👍🏽 emoji  ")]
    [InlineData("   leading spaces and trailing   ")]
    [InlineData("\n\nnewlines\n\n\n")]
    public void Gpt2_matches_a_reference_bpe_on_unicode_digits_and_whitespace(string text)
    {
        var ids = Gpt2.Encode(text);
        Assert.Equal(Gpt2Reference.Encode(text), ids);
        Assert.Equal(text, Gpt2.Decode(ids));
    }

    [Fact]
    public void Cafe_splits_into_c_af_and_the_two_byte_e_acute()
    {
        // Ids from Gpt2Reference: 'c' is byte 0x63, rank 0x63 − 0x21 = 66 in bytes_to_unicode order; "é" is UTF-8 C3 A9.
        Assert.Equal([66, 1878, 2634], Gpt2Reference.Encode("café"));
        Assert.Equal([66, 1878, 2634], Gpt2.Encode("café"));
        Assert.Equal(["c", "af", "é"], Gpt2.ToStrTokens([66, 1878, 2634]));
    }

    [Fact]
    public void ToStrTokens_decodes_each_token_alone_and_shows_partial_characters_as_replacement()
    {
        Assert.Equal(["Hello", " world", "!", " The", " E", "iff", "el", " Tower", " is", " in"],
            Gpt2.ToStrTokens([15496, 995, 0, 383, 412, 733, 417, 8765, 318, 287]));
        // " 🤗" is the bytes 20 F0 9F A4 97, split " \xF0\x9F" | "\xA4" | "\x97": no token holds a whole character.
        Assert.Equal([" \uFFFD", "\uFFFD", "\uFFFD"], Gpt2.ToStrTokens([12520, 97, 245]));
        Assert.Equal(" 🤗", Gpt2.Decode([12520, 97, 245]));
        Assert.Equal(["<|endoftext|>", "\n\n"], Gpt2.ToStrTokens([50256, 628]));
    }

    [Fact]
    public void Gpt2_knows_its_special_ids_and_size()
    {
        Assert.Equal(50257, Gpt2.VocabSize);
        Assert.Equal(50256, Gpt2.BosTokenId);
        Assert.Equal(50256, Gpt2.EosTokenId);
        Assert.Equal(50256, Gpt2.PadTokenId);
        Assert.Equal(995, Gpt2.ToSingleToken(" world"));
        Assert.Throws<ArgumentException>(() => Gpt2.ToSingleToken(" Eiffel"));
        Assert.Throws<ArgumentOutOfRangeException>(() => Gpt2.Decode([50257]));
    }

    [Fact]
    public void Folder_tokenizer_from_gpt2_vocab_and_merges_matches_the_built_in_one()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-gpt2-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            Gpt2Reference.WriteHuggingFaceFiles(folder);
            var fromFolder = ModelTokenizer.FromFolder(folder);

            const string paragraph =
                "The Eiffel Tower is in Paris. It's 330 m tall; built 1887–1889!\n\n" +
                "  Indented line\twith a tab, a café, naïve façades, 東京, and emoji 🤗👍🏽.\r\n" +
                "Numbers: 3.14159, 1,000,000 and 00000000000000000. <|endoftext|>Next document   \n";
            var ids = Gpt2.Encode(paragraph);
            Assert.Equal(ids, fromFolder.Encode(paragraph));
            Assert.Equal(Gpt2.ToStrTokens(ids), fromFolder.ToStrTokens(ids));
            Assert.Equal(paragraph, fromFolder.Decode(ids));
            Assert.Contains(50256, ids);
            Assert.Equal(50257, fromFolder.VocabSize);
            Assert.Equal(50256, fromFolder.BosTokenId);
            Assert.Equal(50256, fromFolder.PadTokenId);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    /// <summary>GPT-2's vocab and merges rewritten as a Hugging Face tokenizer.json (the layout Pythia, Qwen2 and Llama 3 ship).</summary>
    static string WriteTokenizerJson(string folder, object preTokenizer, bool byteFallback = false, bool pairMerges = false, object? normalizer = null)
    {
        Gpt2Reference.WriteHuggingFaceFiles(folder);
        var vocab = System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(folder, "vocab.json")))!;
        var mergeLines = File.ReadAllLines(Path.Combine(folder, "merges.txt")).Skip(1).Where(l => l.Length > 0).ToList();
        File.Delete(Path.Combine(folder, "vocab.json"));
        File.Delete(Path.Combine(folder, "merges.txt"));
        var json = new Dictionary<string, object?>
        {
            ["version"] = "1.0",
            ["added_tokens"] = new[] { new Dictionary<string, object> { ["id"] = 50256, ["content"] = "<|endoftext|>", ["special"] = true } },
            ["normalizer"] = normalizer,
            ["pre_tokenizer"] = preTokenizer,
            ["model"] = new Dictionary<string, object>
            {
                ["type"] = "BPE", ["byte_fallback"] = byteFallback, ["vocab"] = vocab,
                ["merges"] = pairMerges ? mergeLines.Select(l => l.Split(' ')).ToList<object>() : mergeLines.ToList<object>(),
            },
            ["decoder"] = new Dictionary<string, object> { ["type"] = "ByteLevel" },
        };
        string path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, System.Text.Json.JsonSerializer.Serialize(json));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "tokenizer_class": "GPTNeoXTokenizer"}""");
        return path;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Tokenizer_json_with_gpt2s_vocab_and_merges_matches_the_built_in_gpt2(bool pairMerges)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-tokjson-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var preTokenizer = new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
            var fromJson = ModelTokenizer.FromTokenizerJson(WriteTokenizerJson(folder, preTokenizer, pairMerges: pairMerges));
            const string text = "The Eiffel Tower is in Paris. It's 330 m tall; a café, 東京, 🤗.\n\n  Numbers: 3.14159 <|endoftext|>Next";
            var ids = Gpt2.Encode(text);
            Assert.Equal(ids, fromJson.Encode(text));
            Assert.Equal(text, fromJson.Decode(ids));
            Assert.Equal(50256, fromJson.BosTokenId);
            Assert.Equal(50256, fromJson.EosTokenId);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Tokenizer_json_split_regex_is_the_one_applied()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-tokjson-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            // Llama 3 / Qwen2 style: Split by a regex (here: digits one at a time, as Qwen2 does), then ByteLevel without its own.
            var preTokenizer = new Dictionary<string, object>
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new object[]
                {
                    new Dictionary<string, object> { ["type"] = "Split", ["pattern"] = new Dictionary<string, string> { ["Regex"] = @"\p{N}| ?[^\s\p{N}]+|\s+" }, ["behavior"] = "Isolated", ["invert"] = false },
                    new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = false, ["use_regex"] = false },
                },
            };
            var fromJson = ModelTokenizer.FromTokenizerJson(WriteTokenizerJson(folder, preTokenizer));
            var ids = fromJson.Encode("year 2024");
            Assert.Equal(["year", " ", "2", "0", "2", "4"], fromJson.ToStrTokens(ids)); // GPT-2's split would give " 2024" pieces
            Assert.NotEqual(ids, Gpt2.Encode("year 2024"));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Tokenizer_json_with_an_nfc_normalizer_composes_text_first()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-tokjson-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var preTokenizer = new Dictionary<string, object> { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["use_regex"] = true };
            var nfc = ModelTokenizer.FromTokenizerJson(WriteTokenizerJson(folder, preTokenizer, normalizer: new Dictionary<string, string> { ["type"] = "NFC" }));
            string decomposed = "cafe\u0301"; // e + combining acute: NFC makes it é
            Assert.Equal(Gpt2.Encode("caf\u00e9"), nfc.Encode(decomposed));
            Assert.NotEqual(Gpt2.Encode(decomposed), nfc.Encode(decomposed));
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Sentencepiece_style_tokenizer_json_is_refused_by_name()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-tokjson-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string path = WriteTokenizerJson(folder, new Dictionary<string, object> { ["type"] = "Metaspace" }, byteFallback: true);
            var e = Assert.Throws<TokenizerFilesException>(() => ModelTokenizer.FromTokenizerJson(path));
            Assert.Contains("byte_fallback", e.Message);
            Assert.Contains(path, e.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Folder_without_merges_names_the_missing_file()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-empty-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            File.WriteAllText(Path.Combine(folder, "vocab.json"), "{\"a\": 0}");
            var error = Assert.Throws<TokenizerFilesException>(() => ModelTokenizer.FromFolder(folder));
            Assert.Equal(Path.Combine(folder, "merges.txt"), error.Path);
            Assert.Contains("merges.txt", error.Message);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }
}
