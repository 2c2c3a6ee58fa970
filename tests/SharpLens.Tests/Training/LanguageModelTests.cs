using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Corpora;
using SharpLens.Loading;
using SharpLens.Models;
using SharpLens.Tokenization;
using SharpLens.Training;
using SharpLens.Training.LanguageModels;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Training;

/// <summary>
/// `train` / `finetune` on real text (the Brown excerpt fixture, as JSONL documents of two sentences): saved folders
/// load back with equal logits and carry Hugging Face's field names, a SIGKILLed run resumes bit-identically, a
/// fine-tune lowers its own validation loss and leaves the base untouched, and bad input fails cleanly.
/// </summary>
public sealed class LanguageModelTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("sharplens-lm").FullName;
    static readonly BrownCorpus Excerpt = BrownCorpus.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "brown-excerpt"));

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>The excerpt's sentences (of one genre, or all) as a .jsonl corpus, two sentences per document.</summary>
    string Jsonl(string name, string? genre = null, int repeat = 1)
    {
        var sentences = Excerpt.Sentences(genre).Select(s => s.Text).ToList();
        string path = Path.Combine(_root, name + ".jsonl");
        var lines = new List<string>();
        for (int r = 0; r < repeat; r++)
            for (int i = 0; i < sentences.Count; i += 2)
                lines.Add(new JsonObject { ["text"] = string.Join(" ", sentences.Skip(i).Take(2)) }.ToJsonString());
        File.WriteAllLines(path, lines);
        return path;
    }

    LanguageModelSettings Tiny(string corpus, LanguageModelArchitecture arch = LanguageModelArchitecture.Gpt2) => new()
    {
        Corpus = corpus, Architecture = arch, Layers = 1, DModel = 32, Heads = 2, Context = 16, VocabSize = 320,
        Steps = 12, BatchSize = 4, LearningRate = 3e-3, WarmupSteps = 2, EvaluateEvery = 6, EvaluationWindows = 4, CheckpointEvery = null,
        ValidationFraction = 0.2, Seed = 5,
    };

    LanguageModelRunOptions Run(bool resume = false) => new() { CacheRoot = Path.Combine(_root, "cache"), Resume = resume };

    static string Sha(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));

    [Fact]
    public void Trained_bpe_tokenizer_json_gives_the_same_ids_in_hugging_face_tokenizers_and_here()
    {
        var texts = Excerpt.Texts().ToList();
        var bpe = ByteLevelBpeTrainer.Train(texts, new ByteLevelBpeSettings(400, ["<|endoftext|>"]));
        Assert.Equal(400, bpe.VocabSize);
        Assert.Equal(399, bpe.SpecialTokenId("<|endoftext|>"));
        bpe.SaveTo(_root, "<|endoftext|>", "<|endoftext|>", 1024, "GPT2TokenizerFast");
        string json = Path.Combine(_root, "tokenizer.json");

        var ours = ModelTokenizer.FromTokenizerJson(json);
        using var hf = new Tokenizers.DotNet.Tokenizer(vocabPath: json);
        string[] extra =
        [
            "naïve café — 日本語 🙂 Ünïcödé", "  several   spaces\n\nand\tnewlines  ", "don't I'll we've they're it's", "12345 3.14159 1/2",
            "The Fulton County Grand Jury said Friday<|endoftext|>An investigation", "",
        ];
        foreach (string text in texts.Concat(extra))
        {
            var expected = hf.Encode(text).Select(i => (int)i).ToArray();
            Assert.Equal(expected, ours.Encode(text).ToArray());
            Assert.Equal(text, ours.Decode(expected));
        }
        Assert.Equal(399, ours.BosTokenId);
        Assert.Equal(399, ours.EosTokenId);
        // The corpus's words became tokens: " the" is one token.
        Assert.Single(ours.Encode(" the"));
    }

    [Fact]
    public void Vocabulary_below_256_bytes_plus_special_tokens_is_refused_by_name()
    {
        var e = Assert.Throws<TokenizerTrainingException>(() => ByteLevelBpeTrainer.Train(["a b"], new ByteLevelBpeSettings(256, ["<|endoftext|>"])));
        Assert.Contains("257", e.Message);
        var tooSmall = Tiny(Jsonl("all")) with { VocabSize = 200 };
        var s = Assert.Throws<LanguageModelSettingsException>(() => tooSmall.Validated());
        Assert.Contains("--vocab-size 200", s.Message);
    }

    [Theory]
    [InlineData(LanguageModelArchitecture.Gpt2, "gpt2")]
    [InlineData(LanguageModelArchitecture.Llama, "llama")]
    public void Saved_folder_loads_back_with_equal_logits_and_hugging_face_field_names(LanguageModelArchitecture arch, string modelType)
    {
        string output = Path.Combine(_root, "model");
        var result = LanguageModelTrainer.Train(Tiny(Jsonl("all", repeat: 2), arch), output, Run());
        using var trained = result.Model;
        Assert.True(result.Record.TrainLosses[^1] < result.Record.TrainLosses[0], "training lowers the loss");

        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!.AsObject();
        Assert.Equal(modelType, config["model_type"]!.GetValue<string>());
        string[] fields = arch == LanguageModelArchitecture.Gpt2
            ? ["n_embd", "n_layer", "n_head", "n_positions", "vocab_size", "activation_function", "layer_norm_epsilon", "bos_token_id", "eos_token_id", "architectures"]
            : ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "vocab_size", "hidden_act"];
        foreach (string field in fields) Assert.True(config.ContainsKey(field), $"config.json lacks {field}");
        Assert.Equal(320, config["vocab_size"]!.GetValue<int>());
        foreach (string file in new[] { "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "training.json" })
            Assert.True(File.Exists(Path.Combine(output, file)), file);
        Assert.Empty(Directory.GetDirectories(_root, "model.tmp-*"));

        using var tokens = randint(0, 320, [2, 16], dtype: ScalarType.Int64);
        using var loaded = HookedTransformer.FromPretrained(output, processing: WeightProcessingOptions.None);
        using (no_grad())
        {
            using var expected = trained.Run(tokens);
            using var actual = loaded.Run(tokens);
            Assert.Equal(0f, (expected - actual).abs().max().item<float>());
        }
        // The folder's own tokenizer comes with it.
        Assert.Equal(320, loaded.Tokenizer.VocabSize);
        Assert.Equal(loaded.Tokenizer.Encode("The jury said"), ModelTokenizer.FromTokenizerJson(Path.Combine(output, "tokenizer.json")).Encode("The jury said"));
    }

    [Fact]
    public void Finetune_on_one_genre_lowers_that_genres_validation_loss_and_leaves_the_base_unchanged()
    {
        string baseFolder = Path.Combine(_root, "base");
        LanguageModelTrainer.Train(Tiny(Jsonl("all", repeat: 2)) with { Steps = 10 }, baseFolder, Run()).Model.Dispose();
        var before = Directory.GetFiles(baseFolder).ToDictionary(f => Path.GetFileName(f)!, Sha);

        string tuned = Path.Combine(_root, "tuned");
        var settings = Tiny(Jsonl("romance", genre: "romance", repeat: 3)) with { Steps = 15, LearningRate = 3e-3, WarmupSteps = 1 };
        var result = LanguageModelTrainer.Finetune(baseFolder, settings, tuned, Run());
        using var model = result.Model;

        Assert.NotNull(result.Record.InitialValidationLoss);
        Assert.True(result.Record.ValidationLoss < result.Record.InitialValidationLoss - 0.05,
            $"romance validation loss {result.Record.InitialValidationLoss:0.000} → {result.Record.ValidationLoss:0.000}");
        Assert.Equal(before, Directory.GetFiles(baseFolder).ToDictionary(f => Path.GetFileName(f)!, Sha));
        Assert.Equal(Sha(Path.Combine(baseFolder, "tokenizer.json")), Sha(Path.Combine(tuned, "tokenizer.json")));
        var baseConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(baseFolder, "config.json")))!.ToJsonString();
        Assert.Equal(baseConfig, JsonNode.Parse(File.ReadAllText(Path.Combine(tuned, "config.json")))!.ToJsonString());
        Assert.Equal(baseFolder, result.Record.BaseModel);

        var tooLong = Assert.Throws<LanguageModelSettingsException>(() => LanguageModelTrainer.Finetune(baseFolder, settings with { Context = 32 }, Path.Combine(_root, "long"), Run()));
        Assert.Contains("n_ctx = 16", tooLong.Message);
        Assert.False(Directory.Exists(Path.Combine(_root, "long")));
    }

    [Fact]
    public void Bad_corpora_fail_with_a_clear_error_and_write_no_folder()
    {
        string output = Path.Combine(_root, "out");
        string empty = Path.Combine(_root, "empty.txt");
        File.WriteAllText(empty, "\n\n  \n");
        var e = Assert.Throws<CorpusInputException>(() => LanguageModelTrainer.Train(Tiny(empty), output, Run()));
        Assert.Contains("is empty", e.Message);

        string small = Path.Combine(_root, "small.jsonl");
        File.WriteAllLines(small, ["{\"text\": \"A short document.\"}", "{\"text\": \"Another one.\"}", "{\"text\": \"And a third.\"}"]);
        var s = Assert.Throws<CorpusInputException>(() => LanguageModelTrainer.Train(Tiny(small) with { Context = 64 }, output, Run()));
        Assert.Contains("smaller than one context", s.Message);

        string broken = Path.Combine(_root, "broken.jsonl");
        File.WriteAllLines(broken, ["{\"text\": \"fine\"}", "{\"body\": \"no text field\"}"]);
        var b = Assert.Throws<CorpusFormatException>(() => LanguageModelTrainer.Train(Tiny(broken), output, Run()));
        Assert.Equal(2, b.Line);

        Assert.Throws<CorpusInputException>(() => LanguageModelTrainer.Train(Tiny("brown:nonsense-genre"), output, Run() with { BrownFolder = Excerpt.Folder }));
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void A_failing_writer_leaves_no_half_written_model_folder()
    {
        string output = Path.Combine(_root, "full-disk");
        LanguageModelFolder.AfterWeightsWritten = _ => throw new IOException("No space left on device");
        try
        {
            var e = Assert.Throws<IOException>(() => LanguageModelTrainer.Train(Tiny(Jsonl("all", repeat: 2)) with { Steps = 2 }, output, Run()));
            Assert.Contains("No space left", e.Message);
        }
        finally { LanguageModelFolder.AfterWeightsWritten = null; }
        Assert.False(Directory.Exists(output));
        Assert.Empty(Directory.GetDirectories(_root, "full-disk.tmp-*"));
    }

    [Fact]
    public void Lm_eval_reads_a_training_checkpoint_as_it_reads_the_saved_folder()
    {
        string corpus = Jsonl("all", repeat: 2), output = Path.Combine(_root, "run");
        LanguageModelTrainer.Train(Tiny(corpus, LanguageModelArchitecture.Llama) with { CheckpointEvery = 6 }, output, Run()).Model.Dispose();
        string cache = Path.Combine(_root, "cache"), last = TrainingCheckpoint.FolderFor(output + ".checkpoints", 12);

        // The last checkpoint holds the saved model's weights under TransformerLens names: the same measurements.
        var saved = LanguageModelEvaluation.Run(output, corpus, cache);
        var checkpoint = LanguageModelEvaluation.Run(last, corpus, cache);
        Assert.Equal("run/step-000012", checkpoint.Model);
        Assert.Equal(saved.ValidationLoss, checkpoint.ValidationLoss, 5);
        Assert.Equal(saved.LossByPosition, checkpoint.LossByPosition, (a, b) => Math.Abs(a - b) < 1e-5);
        var early = LanguageModelEvaluation.Run(TrainingCheckpoint.FolderFor(output + ".checkpoints", 6), corpus, cache);
        Assert.NotEqual(saved.ValidationLoss, early.ValidationLoss, 3); // an earlier step is another model

        // A checkpoint moved away from its run needs --tokenizer; with it, the same answer.
        string moved = Path.Combine(_root, "elsewhere", "step-000012");
        Directory.CreateDirectory(Path.GetDirectoryName(moved)!);
        Directory.Move(last, moved);
        var refusal = Assert.Throws<CheckpointException>(() => LanguageModelEvaluation.Run(moved, corpus, cache));
        Assert.Contains("--tokenizer", refusal.Message);
        Assert.Equal(saved.ValidationLoss, LanguageModelEvaluation.Run(moved, corpus, cache, tokenizerFolder: output).ValidationLoss, 5);

        // A damaged checkpoint is refused by its manifest, naming the file.
        var weights = Path.Combine(moved, TrainingCheckpoint.WeightsFile);
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(weights, bytes);
        var damaged = Assert.Throws<CheckpointException>(() => LanguageModelEvaluation.Run(moved, corpus, cache, tokenizerFolder: output));
        Assert.Contains("model.safetensors", damaged.Message);
    }

    [Fact]
    public void A_run_killed_with_SIGKILL_resumes_to_bit_identical_weights()
    {
        string corpus = Jsonl("all", repeat: 3);
        var settings = Tiny(corpus) with { Steps = 150, CheckpointEvery = 5 };
        string[] Args(string output, bool resume) =>
        [
            "train", "--corpus", corpus, "--layers", "1", "--d-model", "32", "--heads", "2", "--context", "16", "--vocab-size", "320",
            "--steps", "150", "--batch-size", "4", "--lr", "0.003", "--warmup", "2", "--eval-every", "6", "--eval-windows", "4", "--checkpoint-every", "5",
            "--validation-fraction", "0.2", "--seed", "5", "--threads", "1", "--cache", Path.Combine(_root, "cache"), "--out", output, .. resume ? new[] { "--resume" } : [],
        ];

        // The uninterrupted run, in this process on one thread.
        string straight = Path.Combine(_root, "straight");
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try { LanguageModelTrainer.Train(settings, straight, Run()).Model.Dispose(); }
        finally { torch.set_num_threads(threads); }

        // The same run in a CLI process, killed once its checkpoint at step 10 exists, then resumed.
        string killed = Path.Combine(_root, "killed");
        using (var process = Cli(Args(killed, resume: false)))
        {
            string step10 = TrainingCheckpoint.FolderFor(killed + ".checkpoints", 10);
            var clock = Stopwatch.StartNew();
            while (!Directory.Exists(step10) && !process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(20);
            if (process.HasExited) Assert.Fail("the run ended before it could be killed: " + process.StandardError.ReadToEnd());
            process.Kill(); // SIGKILL on Linux
            process.WaitForExit();
        }
        Assert.False(Directory.Exists(killed), "a killed run leaves no model folder: " + string.Join(", ", Directory.GetFileSystemEntries(_root).Select(Path.GetFileName)));
        int lastCheckpoint = TrainingCheckpoint.List(killed + ".checkpoints").Max(c => c.Step);
        Assert.InRange(lastCheckpoint, 10, 145);

        using (var resumed = Cli(Args(killed, resume: true)))
        {
            string output = resumed.StandardOutput.ReadToEnd();
            resumed.WaitForExit();
            Assert.True(resumed.ExitCode == 0, output + resumed.StandardError.ReadToEnd());
            Assert.Contains($"Resumed from the checkpoint at step {lastCheckpoint}", output);
        }
        Assert.Equal(Sha(Path.Combine(straight, "model.safetensors")), Sha(Path.Combine(killed, "model.safetensors")));
        var a = LanguageModelFolder.ReadRecord(straight)!;
        var b = LanguageModelFolder.ReadRecord(killed)!;
        Assert.Equal(a.TrainLosses, b.TrainLosses);
        Assert.Equal(a.ValidationLoss, b.ValidationLoss);
    }

    static Process Cli(IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }
}

public sealed class LanguageModelMeasurementTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("sharplens-lm-measure").FullName;
    public void Dispose() => Directory.Delete(_root, recursive: true);

    static void WriteShard(string path, IEnumerable<int> ids)
    {
        using var file = File.Create(path);
        foreach (int id in ids) { file.WriteByte((byte)id); file.WriteByte((byte)(id >> 8)); }
    }

    [Fact]
    public void Bigram_baseline_knows_a_deterministic_successor_and_unigram_does_not()
    {
        // 0 1 2 3 0 1 2 3 …: each token fixes the next, while all four are equally frequent.
        WriteShard(Path.Combine(_root, "train.bin"), Enumerable.Range(0, 4000).Select(i => i % 4));
        WriteShard(Path.Combine(_root, "val.bin"), Enumerable.Range(0, 401).Select(i => i % 4));
        using var train = SharpLens.Training.Data.TokenShard.Open(Path.Combine(_root, "train.bin"), words: 4000);
        using var validation = SharpLens.Training.Data.TokenShard.Open(Path.Combine(_root, "val.bin"), words: 401);
        var b = NgramBaselines.Measure(train, validation, vocab: 4, context: 100);
        Assert.Equal(400, b.Predictions);
        Assert.Equal(Math.Log(4), b.Unigram, 2);
        Assert.Equal(0.95, b.BigramLambda);
        Assert.Equal(-Math.Log(0.95 + 0.05 * 0.25), b.Bigram, 3);
    }

    [Fact]
    public void Word_starts_point_at_each_word_of_the_detokenized_sentence()
    {
        string[] words = ["He", "said", "(", "quietly", ")", "``", "yes", "''", ",", "then", "left", "."];
        var (text, starts) = BrownCorpus.DetokenizeWithStarts(words);
        Assert.Equal(BrownCorpus.Detokenize(words), text);
        for (int i = 0; i < words.Length; i++)
            Assert.StartsWith(words[i] is "``" or "''" ? "\"" : words[i], text[starts[i]..], StringComparison.Ordinal);
        Assert.Equal("noun", LanguageModelEvaluation.Group("nn-tl"));
        Assert.Equal("verb", LanguageModelEvaluation.Group("vbd"));
        Assert.Equal("verb", LanguageModelEvaluation.Group("dod*"));
        Assert.Equal("determiner", LanguageModelEvaluation.Group("at"));
        Assert.Equal("punctuation", LanguageModelEvaluation.Group("."));
        Assert.Equal("proper noun", LanguageModelEvaluation.Group("np$"));
    }

    [Fact]
    public void Repeat_fraction_makes_that_share_of_windows_repeat_their_own_text_at_varied_periods_and_leaves_the_rest()
    {
        const int rows = 40, length = 65;
        using var windows = TorchSharp.torch.arange(rows * length, dtype: TorchSharp.torch.ScalarType.Int64).reshape(rows, length); // [40, 65]: all distinct
        using var original = windows.clone();
        using var generator = new TorchSharp.torch.Generator(7);
        var repeated = LanguageModelTrainer.WithRepeats(windows, 0.5, generator); // 20 of 40
        var periods = new HashSet<long>();
        for (int r = 0; r < 20; r++)
        {
            long[] row = repeated[r].data<long>().ToArray(), before = original[r].data<long>().ToArray();
            // Every token is one of the window's own; the first repeated position and the period follow from the values.
            Assert.All(row, t => Assert.Contains(t, before));
            int first = Enumerable.Range(1, length - 1).FirstOrDefault(i => row[i] <= row[i - 1]);
            Assert.True(first > 0, $"row {r} never repeats");
            long period = first - (row[first] - before[0]);
            periods.Add(period);
            Assert.InRange(period, 16, 32);
            for (int i = first; i < length; i++) Assert.Equal(row[i - period], row[i]);
            Assert.True(length - first >= period, $"row {r}: fewer than one whole copy");
        }
        Assert.True(periods.Count >= 5, $"periods should vary; got {string.Join(", ", periods)}");
        Assert.Equal(original[20..].data<long>().ToArray(), repeated[20..].data<long>().ToArray());
        using var untouched = original.clone();
        Assert.Equal(original.data<long>().ToArray(), LanguageModelTrainer.WithRepeats(untouched, 0, generator).data<long>().ToArray());
        Assert.Throws<LanguageModelSettingsException>(() => new LanguageModelSettings { RepeatFraction = 1 }.Validated());
    }

    [Fact]
    public void Loss_by_position_is_the_mean_per_token_loss_at_each_position_of_the_validation_windows()
    {
        var ids = Enumerable.Range(0, 3 * 8 + 1).Select(i => (i * 7 + i / 5) % 11).ToArray();
        WriteShard(Path.Combine(_root, "val.bin"), ids);
        using var validation = SharpLens.Training.Data.TokenShard.Open(Path.Combine(_root, "val.bin"), words: ids.Length);
        var cfg = new SharpLens.Models.ModelConfig { DModel = 16, NLayers = 1, NHeads = 2, DHead = 8, DMlp = 32, DVocab = 11, NCtx = 8 };
        using var model = new SharpLens.Models.HookedTransformer(cfg, seed: 3);
        var byPosition = LanguageModelEvaluation.LossByPosition(model, validation, context: 8);
        using var windows = TorchSharp.torch.tensor(Enumerable.Range(0, 3).SelectMany(w => ids[(w * 8)..(w * 8 + 9)]).Select(i => (long)i).ToArray(), [3, 9]); // [3, 9]
        using var logits = model.Run(windows[.., ..^1]); // [3, 8, 11]
        using var perToken = -logits.log_softmax(-1).gather(-1, windows[.., 1..].unsqueeze(-1)).squeeze(-1); // [3, 8]
        var expected = perToken.mean([0]).data<float>().ToArray();
        Assert.Equal(8, byPosition.Length);
        for (int p = 0; p < 8; p++) Assert.Equal(expected[p], byPosition[p], 4);
        Assert.True(expected.Max() - expected.Min() > 0.01); // positions differ, so a constant curve would fail
    }

    [Fact]
    public void The_fused_attention_kernel_gives_the_same_gradients_as_the_explicit_pattern()
    {
        var cfg = new SharpLens.Models.ModelConfig
        {
            DModel = 16, NLayers = 2, NHeads = 2, DHead = 8, DMlp = 32, DVocab = 23, NCtx = 12,
            ActFn = SharpLens.Models.Activation.GeluNew, NormalizationType = SharpLens.Models.Normalization.LN, PositionalEmbeddingType = SharpLens.Models.PositionalEmbedding.Learned,
        };
        using var model = new SharpLens.Models.HookedTransformer(cfg, seed: 5);
        using var generator = new TorchSharp.torch.Generator(3);
        using var windows = TorchSharp.torch.randint(0, 23, [4, 13], generator: generator, dtype: TorchSharp.torch.ScalarType.Int64); // [4, 13]
        float[] Gradient(bool hooked)
        {
            model.zero_grad();
            using var handle = hooked ? model.AddHook("blocks.0.attn.hook_pattern", (t, _) => t) : null;
            using var handle1 = hooked ? model.AddHook("blocks.1.attn.hook_pattern", (t, _) => t) : null;
            using var loss = LanguageModelTrainer.CrossEntropy(model, windows);
            loss.backward();
            var named = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            return [.. new[] { "blocks.0.attn.W_Q", "blocks.1.attn.W_K", "pos_embed.W_pos" }.SelectMany(n => named[n].grad!.flatten().data<float>().ToArray())];
        }
        var fused = Gradient(hooked: false);
        var explicitPattern = Gradient(hooked: true);
        Assert.True(explicitPattern.Select(Math.Abs).Max() > 1e-4);
        for (int i = 0; i < fused.Length; i++) Assert.Equal(explicitPattern[i], fused[i], 4);
    }
}
