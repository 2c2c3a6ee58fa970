using System.Text.Json;
using SharpLens.Loading;
using SharpLens.Loading.Llama2c;
using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

/// <summary>llama2.c checkpoints: against an independent run.c-style forward, and a trained model's round trip.</summary>
public class Llama2cTests : IDisposable
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "llama2c", "tiny-gqa-unshared.bin");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-l2c-{Guid.NewGuid():N}");

    public Llama2cTests() => Directory.CreateDirectory(_folder);
    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static (long[] Tokens, Tensor Logits) Golden()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Path.GetDirectoryName(Fixture)!, "golden.json")));
        var root = json.RootElement;
        long[] shape = [.. root.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
        return ([.. root.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt64())],
                tensor(root.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray()).reshape(shape));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Checkpoint_gives_the_logits_of_an_independent_run_c_style_forward(bool processed)
    {
        var (tokens, golden) = Golden();
        using var model = Llama2cConversion.Load(Fixture, processing: processed ? null : WeightProcessingOptions.None);
        Assert.Equal(4, model.Config.NHeads);
        Assert.Equal(2, model.Config.KeyValueHeads);
        Assert.False(model.Config.TiedEmbeddings);
        using var logits = model.Run(tensor(tokens).unsqueeze(0))[0].to(ScalarType.Float64); // [pos, vocab]
        double diff = (logits.log_softmax(-1) - golden.log_softmax(-1)).abs().max().item<double>();
        Assert.True(diff < 1e-4, $"max |log-prob difference| {diff}");
        Assert.True(golden.std().item<double>() > 0.5); // the fixture is not trivially flat
    }

    [Fact]
    public void Loaded_checkpoint_exports_back_to_the_same_weights()
    {
        using var model = Llama2cConversion.Load(Fixture, processing: WeightProcessingOptions.None);
        string copy = Path.Combine(_folder, "copy.bin");
        Llama2cConversion.Export(model, copy);
        var (h1, a) = Llama2cCheckpoint.Read(Fixture);
        var (h2, b) = Llama2cCheckpoint.Read(copy);
        Assert.Equal(h1, h2);
        foreach (var name in a.Keys)
        {
            double tolerance = name.StartsWith("freqs", StringComparison.Ordinal) ? 1e-6 : 0; // recomputed tables; weights are copied bit for bit
            Assert.True((a[name] - b[name]).abs().max().item<float>() <= tolerance, name);
        }
    }

    [Fact]
    public void Trained_llama_model_round_trips_through_llama2c_with_identical_logits_and_generation()
    {
        var config = new ModelConfig
        {
            DModel = 32, NLayers = 2, NHeads = 4, DHead = 8, NKeyValueHeads = 2, DMlp = 64, DVocab = 40, NCtx = 32,
            ActFn = Activation.Silu, GatedMlp = true, NormalizationType = Normalization.RMS, Eps = 1e-5,
            PositionalEmbeddingType = PositionalEmbedding.Rotary, RotaryBase = 10000, ModelName = "tiny-llama",
        }.Validated();
        using var model = new HookedTransformer(config, seed: 5);
        foreach (var (name, parameter) in model.named_parameters()) // llama2.c has no biases: keep them at zero
            if (name.Split('.')[^1].TrimStart('_').StartsWith("b_", StringComparison.Ordinal)) parameter.requires_grad = false; // _b_K, _b_V too
        // Learn to count: from a random start, each token is the previous one plus one (ids 3…39, wrapping).
        var record = Trainer.Train(model, new TrainingSettings { Steps = 60, BatchSize = 16, LearningRate = 1e-2, WarmupSteps = 5, Seed = 1 },
            (_, g) => new TrainingBatch((randint(0, 37, [16, 1], generator: g) + arange(12)) % 37 + 3));
        Assert.True(record.Losses[^1] < 1.0 && record.Losses[0] > 3.0, $"training moved the loss from {record.Losses[0]} to {record.Losses[^1]}");

        string path = Path.Combine(_folder, "trained.bin");
        Llama2cConversion.Export(model, path);
        using var back = Llama2cConversion.Load(path, processing: WeightProcessingOptions.None);
        using var tokens = randint(3, 40, [2, 20], generator: new Generator(9));
        var original = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, value) in back.named_parameters())
            Assert.True(original.TryGetValue(name, out var o) && o.shape.SequenceEqual(value.shape) && (o - value).abs().max().item<float>() == 0, $"parameter {name} differs after the round trip");
        using var before = model.Run(tokens);
        using var after = back.Run(tokens);
        Assert.Equal(0f, (before - after).abs().max().item<float>());

        using var prompt = tokens[0, ..6];
        using var g1 = model.Generate(prompt, 20, temperature: 0);
        using var g2 = back.Generate(prompt, 20, temperature: 0);
        Assert.Equal(g1.data<long>().ToArray(), g2.data<long>().ToArray());

        // Processed on load (RMS folded), the log-probs stay the same.
        using var processed = Llama2cConversion.Load(path);
        using var p = processed.Run(tokens);
        Assert.True((p.log_softmax(-1) - before.log_softmax(-1)).abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void Export_refuses_a_model_llama2c_cannot_express_and_says_why()
    {
        using var processed = Llama2cConversion.Load(Fixture);
        var e = Assert.Throws<ArgumentException>(() => Llama2cConversion.Export(processed, Path.Combine(_folder, "x.bin")));
        Assert.Contains("WeightProcessingOptions.None", e.Message);
        Assert.False(File.Exists(Path.Combine(_folder, "x.bin")));

        using var biased = Llama2cConversion.Load(Fixture, processing: WeightProcessingOptions.None);
        using (no_grad()) biased.named_parameters().First(p => p.name == "blocks.1.attn._b_K").parameter.fill_(0.5f);
        e = Assert.Throws<ArgumentException>(() => Llama2cConversion.Export(biased, Path.Combine(_folder, "z.bin")));
        Assert.Contains("blocks.1.attn._b_K", e.Message);

        using var gpt2 = new HookedTransformer(new ModelConfig { DModel = 16, NLayers = 1, NHeads = 2, DHead = 8, DMlp = 32, DVocab = 10, NCtx = 8 }, seed: 1);
        e = Assert.Throws<ArgumentException>(() => Llama2cConversion.Export(gpt2, Path.Combine(_folder, "y.bin")));
        Assert.Contains("not rotary", e.Message);
        Assert.Contains("SiLU-gated", e.Message);
    }

    [Fact]
    public void Truncated_or_mislabelled_files_are_named_with_the_size_they_should_have()
    {
        var bytes = File.ReadAllBytes(Fixture);
        string truncated = Path.Combine(_folder, "truncated.bin");
        File.WriteAllBytes(truncated, bytes[..^100]);
        var e = Assert.Throws<CheckpointException>(() => Llama2cCheckpoint.Read(truncated));
        Assert.Contains(truncated, e.Message);
        Assert.Contains((bytes.Length - 100).ToString(), e.Message);
        Assert.Contains(bytes.Length.ToString(), e.Message);

        // The same file claiming a shared classifier (positive vocab_size) is one classifier too long.
        string flipped = Path.Combine(_folder, "flipped.bin");
        var copy = (byte[])bytes.Clone();
        BitConverter.GetBytes(Math.Abs(BitConverter.ToInt32(copy, 20))).CopyTo(copy, 20);
        File.WriteAllBytes(flipped, copy);
        e = Assert.Throws<CheckpointException>(() => Llama2cCheckpoint.Read(flipped));
        Assert.Contains("sign of vocab_size", e.Message);
    }

    [Fact]
    public void Tokenizer_bin_beside_the_checkpoint_becomes_the_models_tokenizer()
    {
        // 67 pieces for the fixture's 67-token vocabulary: <unk> <s> </s>, space, a…z, a few merges, fillers.
        var pieces = new List<string> { "<unk>", "<s>", "</s>", " " };
        pieces.AddRange(Enumerable.Range('a', 26).Select(c => ((char)c).ToString()));
        pieces.AddRange(["th", "he", "the", " the", "an", "and", " and", "nd"]);
        while (pieces.Count < 67) pieces.Add($"<filler{pieces.Count}>");
        var tokenizer = new SharpLens.Tokenization.Llama2cTokenizer(
            [.. pieces.Select(p => System.Text.Encoding.UTF8.GetBytes(p))], [.. pieces.Select(p => (float)p.Length)]);
        File.Copy(Fixture, Path.Combine(_folder, "model.bin"));
        tokenizer.Write(Path.Combine(_folder, "tokenizer.bin"));

        using var model = Llama2cConversion.Load(Path.Combine(_folder, "model.bin"));
        using var tokens = model.ToTokens("the band");
        long[] expected = [SharpLens.Tokenization.Llama2cTokenizer.Bos, .. tokenizer.Encode("the band", bos: false).Select(i => (long)i)];
        Assert.Equal(expected, tokens[0].data<long>().ToArray());
        Assert.Equal(" the", model.ToStrTokens(tokens)[1]); // llama2.c's leading space piece merged into " the"
        Assert.Equal("the band", model.ToText(tokens));
    }
}
