using System.Text;
using System.Text.Json.Nodes;
using SharpLens.Corpora;
using SharpLens.Saes;
using SharpLens.Saes.Dashboards;
using SharpLens.Saes.Data;
using SharpLens.Server.Explorer;
using SharpLens.Tests.Encoder;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Explorer;

/// <summary>Feature pages read real text, tokenized with the model's own tokenizer, and say so; a model without a tokenizer
/// falls back to repeated random sequences and says why.</summary>
public sealed class ExplorerCorpusTests : IDisposable
{
    static readonly TextCorpus Brown = TextCorpus.FromBrown(BrownCorpus.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt")));
    readonly string _dir = Directory.CreateTempSubdirectory("sharplens-explorer-corpus").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A byte-level BPE of 300 ids trained on the excerpt, as `sharplens lm train` trains one.</summary>
    ModelTokenizer Bpe()
    {
        var bpe = ByteLevelBpeTrainer.Train(Brown.Documents.Select(d => d.Text), new ByteLevelBpeSettings(300, ["<|endoftext|>"]));
        bpe.SaveTo(_dir, "<|endoftext|>", "<|endoftext|>", 1024, "GPT2TokenizerFast");
        return ModelTokenizer.FromTokenizerJson(Path.Combine(_dir, "tokenizer.json"));
    }

    [Fact]
    public async Task Feature_pages_show_text_contexts_tokenized_with_the_models_tokenizer()
    {
        var tokenizer = Bpe();
        using var model = TestModels.RandomModel(TestModels.Tiny() with { DVocab = 300 }, seed: 5);
        model.Tokenizer = tokenizer; // as a Hugging Face folder's tokenizer.json is set: the config names no tokenizer
        Assert.Null(model.Config.TokenizerName);
        var contexts = ExplorerContexts.FromText(Brown, decoder: model, contexts: 6, contextSize: 16);
        Assert.Equal("text", contexts.Source);
        Assert.Equal(new long[] { 6, 16 }, contexts.Tokens.shape);
        // Three rows from each of the two documents (spread over the corpus): BOS, then the document's next 15 tokens.
        long bos = tokenizer.BosTokenId!.Value;
        var docs = Brown.Documents.Select(d => tokenizer.Encode(d.Text).Select(i => (long)i).ToArray()).ToArray();
        var rows = contexts.Tokens.data<long>().ToArray();
        for (int r = 0; r < 6; r++)
        {
            var doc = docs[r / 3];
            long[] expected = [bos, .. doc.AsSpan(15 * (r % 3), 15).ToArray()];
            Assert.Equal(expected, rows.AsSpan(16 * r, 16).ToArray());
        }
        Assert.Contains(bos, contexts.ExcludedTokenIds.Select(i => (long)i));

        const string hook = "blocks.1.hook_resid_pre";
        using var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, model.Config.DModel, 24) { Metadata = new() { HookName = hook } }, seed: 3);
        using var explorer = new ExplorerModel("tiny-bpe", decoder: model, saes: [new ExplorerSae("random-sae", sae, hook)], contexts: contexts);
        await using var server = await ExplorerServer.StartAsync(explorer);
        using var client = new HttpClient { BaseAddress = server.Address };
        client.DefaultRequestHeaders.Add("X-Explorer-Token", server.Token);
        var info = JsonNode.Parse(await client.GetStringAsync("/api/model"))!;
        Assert.True(info["has_tokenizer"]!.GetValue<bool>());
        Assert.Equal("text", info["corpus_source"]!.GetValue<string>());
        Assert.Equal("brown: 6 contexts of 16 tokens from 2 of its 2 documents, tokenized with the model's tokenizer (" + tokenizer.Name + ")", info["corpus"]!.GetValue<string>());

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var options = new FeatureDashboardOptions { Features = [0], Intervals = 10, WindowBefore = 5, WindowAfter = 5, ExcludedTokenIds = [(int)bos] };
        var reader = ModelActivations.Reader(model, hook);
        int feature = Enumerable.Range(0, 24).First(k => FeatureDashboard.Build(reader, x => sae.Encode(x), contexts.Tokens, ids => tokenizer.ToStrTokens(ids),
            options with { Features = [k] }).Features[0].Density > 0);
        var expectedPage = FeatureDashboard.Build(reader, x => sae.Encode(x), contexts.Tokens, ids => tokenizer.ToStrTokens(ids), options with { Features = [feature] },
            W_dec: sae.W_dec.detach(), W_U: model.unembed.W_U.detach()).Features[0];
        using var response = await client.PostAsync("/api/features/page", new StringContent($"{{\"sae\": 0, \"feature\": {feature}}}", Encoding.UTF8, "application/json"));
        var page = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("text", page["corpus_source"]!.GetValue<string>());
        Assert.Equal(expectedPage.Density, page["frac_nonzero"]!.GetValue<double>(), 9);
        Assert.Equal(96 - 6, page["tokens_read"]!.GetValue<long>()); // every position but each row's BOS
        var top = page["top_activations"]!.AsArray();
        Assert.Equal(expectedPage.TopExamples.Count, top.Count);
        for (int i = 0; i < top.Count; i++)
        {
            Assert.Equal(expectedPage.TopExamples[i].Window.Select(t => t.Token), top[i]!["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
            Assert.Equal(expectedPage.TopExamples[i].Activation, top[i]!["activation"]!.GetValue<double>(), 5);
            Assert.NotEqual("<|endoftext|>", top[i]!["tokens"]![top[i]!["center"]!.GetValue<int>()]!.GetValue<string>());
        }
        // The contexts are the corpus's words: the top context's window is a piece of the excerpt's text.
        string window = string.Concat(top[0]!["tokens"]!.AsArray().Select(t => t!.GetValue<string>())).Replace("<|endoftext|>", "");
        Assert.Contains(window.Trim(), string.Join(" ", Brown.Documents.Select(d => d.Text)));
    }

    [Fact]
    public void Plain_text_and_json_lines_files_are_read_as_the_cli_reads_them()
    {
        var tokenizer = Bpe();
        using var model = TestModels.RandomModel(TestModels.Tiny() with { DVocab = 300 }, seed: 5);
        model.Tokenizer = tokenizer;
        string text = string.Join("\n\n", Brown.Documents.Select(d => d.Text));
        File.WriteAllText(Path.Combine(_dir, "notes.txt"), text);
        File.WriteAllLines(Path.Combine(_dir, "notes.jsonl"), Brown.Documents.Select(d => new JsonObject { ["text"] = d.Text }.ToJsonString()));
        using var plain = ExplorerContexts.FromText(TextCorpus.Open(Path.Combine(_dir, "notes.txt")), decoder: model, contexts: 4, contextSize: 12);
        using var jsonl = ExplorerContexts.FromText(TextCorpus.Open(Path.Combine(_dir, "notes.jsonl")), decoder: model, contexts: 4, contextSize: 12);
        // The same documents either way: the same rows.
        Assert.Equal(plain.Tokens.data<long>().ToArray(), jsonl.Tokens.data<long>().ToArray());
        Assert.StartsWith(Path.Combine(_dir, "notes.txt") + ": 4 contexts of 12 tokens from 2 of its 2 documents", plain.Description);
        // A model's context is never exceeded.
        using var longer = ExplorerContexts.FromText(Brown, decoder: model, contexts: 2, contextSize: 1000);
        Assert.Equal(model.Config.NCtx, (int)longer.Tokens.shape[1]);
    }

    [Fact]
    public void A_model_without_a_tokenizer_falls_back_to_random_sequences_and_refuses_a_corpus_with_a_reason()
    {
        using var model = TestModels.RandomModel();
        var e = Assert.Throws<ExplorerSetupException>(() => ExplorerContexts.FromText(Brown, decoder: model));
        Assert.Contains("--corpus brown", e.Message);
        Assert.Contains("has no tokenizer", e.Message);
        using var explorer = new ExplorerModel("tiny", decoder: model);
        Assert.Equal("random", explorer.Contexts.Source);
        Assert.Contains("tiny has no tokenizer, so it cannot read text", explorer.CorpusDescription);
        var tooShort = TextCorpus.FromDocuments("short", [new TextDocument("a", "Hi.")]);
        using var bpeModel = TestModels.RandomModel(TestModels.Tiny() with { DVocab = 300 }, seed: 5);
        bpeModel.Tokenizer = Bpe();
        Assert.Contains("shorter than one context", Assert.Throws<ExplorerSetupException>(() => ExplorerContexts.FromText(tooShort, decoder: bpeModel, contextSize: 16)).Message);
        using var withTokenizer = new ExplorerModel("tiny", decoder: bpeModel);
        Assert.Contains("no corpus was given", withTokenizer.CorpusDescription);
    }
}

/// <summary>An encoder's feature pages read sentences packed into [CLS] … [SEP] rows, with [PAD] masked as the SAE commands read them.</summary>
[Collection("minilm")]
public sealed class ExplorerEncoderCorpusTests(MiniLmFixture minilm)
{
    [Fact]
    public async Task MiniLM_reads_the_excerpt_in_wordpiece_rows_and_the_feature_page_is_the_librarys()
    {
        var brown = TextCorpus.FromBrown(BrownCorpus.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt")));
        var contexts = ExplorerContexts.FromText(brown, encoder: minilm.Model, contexts: 8, contextSize: 32);
        var tk = minilm.Tokenizer;
        var rows = contexts.Tokens.data<long>().ToArray();
        int n = (int)contexts.Tokens.shape[0];
        Assert.InRange(n, 2, 8);
        for (int r = 0; r < n; r++) Assert.Equal((long)tk.ClsTokenId, rows[32 * r]);
        Assert.Contains(tk.PadTokenId, contexts.ExcludedTokenIds);
        const string hook = "blocks.2.hook_resid_post";
        using var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, 384, 16) { Metadata = new() { HookName = hook } }, seed: 4);
        using var explorer = new ExplorerModel("all-MiniLM-L6-v2", encoder: minilm.Model, saes: [new ExplorerSae("random-sae", sae, hook)], contexts: contexts);
        await using var server = await ExplorerServer.StartAsync(explorer);
        using var client = new HttpClient { BaseAddress = server.Address };
        client.DefaultRequestHeaders.Add("X-Explorer-Token", server.Token);
        using var response = await client.PostAsync("/api/features/page", new StringContent("{\"sae\": 0, \"feature\": 3}", Encoding.UTF8, "application/json"));
        var page = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        using var scope = NewDisposeScope();
        var expected = FeatureDashboard.Build(EncoderActivations.Reader(minilm.Model, null, hook), x => sae.Encode(x), contexts.Tokens,
            ids => [.. ids.Select(i => tk.Piece(i))],
            new FeatureDashboardOptions { Features = [3], Intervals = 10, WindowBefore = 5, WindowAfter = 5, ExcludedTokenIds = EncoderActivations.SpecialTokenIds(tk) }).Features[0];
        Assert.Equal(expected.Density, page["frac_nonzero"]!.GetValue<double>(), 9);
        Assert.Equal(expected.MaxActivation, page["max_activation"]!.GetValue<double>(), 4);
        Assert.Equal(expected.TopExamples[0].Window.Select(t => t.Token), page["top_activations"]![0]!["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Contains("WordPiece", page["corpus"]!.GetValue<string>());
    }
}
