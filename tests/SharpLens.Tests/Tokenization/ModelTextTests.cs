using SharpLens.Models;
using SharpLens.Tokenization;
using static TorchSharp.torch;

namespace SharpLens.Tests.Tokenization;

public class ModelTextTests
{
    // GPT-2's vocabulary on a tiny body: text methods need the ids, not a trained model.
    static HookedTransformer TinyGpt2Shaped(string? tokenizerName = "gpt2") => new(new ModelConfig
    {
        DModel = 8, NLayers = 1, NHeads = 2, DHead = 4, DMlp = 16, DVocab = 50257, NCtx = 32, TokenizerName = tokenizerName,
    }, seed: 3);

    [Fact]
    public void ToTokens_prepends_bos_and_ToText_and_ToStrTokens_invert_it()
    {
        using var scope = NewDisposeScope();
        var model = TinyGpt2Shaped();
        var tokens = model.ToTokens("Hello world! The Eiffel Tower is in");
        Assert.Equal([1L, 11], tokens.shape);
        Assert.Equal(ScalarType.Int64, tokens.dtype);
        Assert.Equal([50256L, 15496, 995, 0, 383, 412, 733, 417, 8765, 318, 287], tokens[0].data<long>().ToArray());
        Assert.Equal([15496L, 995], model.ToTokens("Hello world", prependBos: false)[0].data<long>().ToArray());

        Assert.Equal("<|endoftext|>Hello world! The Eiffel Tower is in", model.ToText(tokens));
        Assert.Equal(["<|endoftext|>", "Hello", " world", "!", " The", " E", "iff", "el", " Tower", " is", " in"], model.ToStrTokens(tokens));
        Assert.Equal(model.ToStrTokens(tokens), model.ToStrTokens("Hello world! The Eiffel Tower is in"));
        Assert.Equal(383, model.ToSingleToken(" The"));
    }

    [Fact]
    public void ToTokens_of_several_texts_pads_on_the_asked_side_with_a_mask_of_real_tokens()
    {
        using var scope = NewDisposeScope();
        var model = TinyGpt2Shaped();
        string[] texts = ["hello world", "Hello world! The"];

        var (right, rightMask) = model.ToTokens(texts);
        Assert.Equal([2L, 5], right.shape);
        Assert.Equal([50256L, 31373, 995, 50256, 50256], right[0].data<long>().ToArray());
        Assert.Equal([1L, 1, 1, 0, 0], rightMask[0].data<long>().ToArray());
        Assert.Equal([50256L, 15496, 995, 0, 383], right[1].data<long>().ToArray());
        Assert.Equal([1L, 1, 1, 1, 1], rightMask[1].data<long>().ToArray());

        var (left, leftMask) = model.ToTokens(texts, prependBos: false, side: PaddingSide.Left);
        Assert.Equal([50256L, 50256, 31373, 995], left[0].data<long>().ToArray());
        Assert.Equal([0L, 0, 1, 1], leftMask[0].data<long>().ToArray());
        // Padding is a real id (EOS), so decoding a padded row shows it, as TransformerLens's to_string does.
        Assert.Equal(["<|endoftext|><|endoftext|>hello world", "Hello world! The"], model.ToTexts(left));
    }

    [Fact]
    public void Run_on_text_equals_run_on_its_tokens()
    {
        using var scope = NewDisposeScope();
        var model = TinyGpt2Shaped();
        var fromText = model.Run("The Eiffel Tower");
        var fromTokens = model.Run(model.ToTokens("The Eiffel Tower"));
        Assert.Equal([1L, 6, 50257], fromText.shape); // BOS, "The", " E", "iff", "el", " Tower"
        Assert.True(fromText.equal(fromTokens).all().item<bool>());
    }

    [Fact]
    public void A_model_without_a_tokenizer_says_how_to_set_one_and_accepts_one_set()
    {
        using var scope = NewDisposeScope();
        var model = TinyGpt2Shaped(tokenizerName: null);
        var error = Assert.Throws<MissingTokenizerException>(() => model.ToTokens("hi"));
        Assert.Contains("model.Tokenizer", error.Message);

        model.Tokenizer = ModelTokenizer.Gpt2();
        Assert.Equal([50256L, .. Gpt2Reference.Encode("hi").Select(i => (long)i)], model.ToTokens("hi")[0].data<long>().ToArray());

        var small = new HookedTransformer(new ModelConfig { DModel = 8, NLayers = 1, NHeads = 2, DHead = 4, DMlp = 16, DVocab = 100, NCtx = 8 });
        Assert.Throws<ArgumentException>(() => small.Tokenizer = ModelTokenizer.Gpt2());
    }
}
