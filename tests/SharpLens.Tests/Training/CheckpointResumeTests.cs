using SharpLens.Loading;
using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Tests.Training;

public sealed class CheckpointResumeTests : IDisposable
{
    const int Vocab = 16, Length = 12;
    readonly string _root = Path.Combine(Path.GetTempPath(), $"sharplens-resume-{Guid.NewGuid():N}");

    // Attention-only with W_Q, W_K, W_V all [2, 32, 16]: moments handed to the wrong one of them load without complaint.
    static HookedTransformer TinyModel() => new(new ModelConfig
    {
        DModel = 32, NLayers = 1, NHeads = 2, DHead = 16, DVocab = Vocab, NCtx = Length, AttnOnly = true,
    }, seed: 3);

    static readonly TrainingSettings Settings = new() { Steps = 12, LearningRate = 1e-2, WarmupSteps = 2, Seed = 7 };

    static TrainingBatch Counting(Generator generator)
    {
        var start = randint(0, Vocab, [8, 1], generator: generator, dtype: ScalarType.Int64);
        return new TrainingBatch((start + arange(Length, dtype: ScalarType.Int64)) % Vocab); // [8, Length]
    }

    static void AssertSameWeights(HookedTransformer expected, HookedTransformer actual)
    {
        var byName = actual.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in expected.named_parameters())
            Assert.True(p.eq(byName[name]).all().item<bool>(), $"{name} differs");
    }

    /// <summary>Trains 12 steps with a checkpoint after 6, then deletes the final one, as if the run had stopped at 6.</summary>
    (HookedTransformer Model, TrainingRecord Record, string Folder) TrainStoppingAtSix()
    {
        var model = TinyModel();
        string folder = Path.Combine(_root, "run");
        var record = Trainer.Train(model, Settings, (_, g) => Counting(g), new TrainingRunOptions { CheckpointFolder = folder, CheckpointSteps = [6] });
        Directory.Delete(TrainingCheckpoint.FolderFor(folder, 12), recursive: true);
        return (model, record, folder);
    }

    static TrainingRecord Resume(HookedTransformer model, string folder) =>
        Trainer.Train(model, Settings, (_, g) => Counting(g), new TrainingRunOptions { CheckpointFolder = folder, Resume = true });

    [Fact]
    public void Resumed_run_equals_an_uninterrupted_run_bit_for_bit()
    {
        var (straight, straightRecord, folder) = TrainStoppingAtSix();
        Assert.True(File.Exists(Path.Combine(TrainingCheckpoint.FolderFor(folder, 6), TrainingCheckpoint.OptimizerFile)));

        using var resumed = TinyModel();
        var record = Resume(resumed, folder);

        Assert.Equal(6, record.ResumedFrom);
        Assert.Equal(straightRecord.Losses, record.Losses);
        AssertSameWeights(straight, resumed);
        straight.Dispose();
    }

    static void Step(HookedTransformer model, NamedAdamW adamW, Tensor tokens)
    {
        using var scope = NewDisposeScope();
        adamW.Optimizer.zero_grad();
        Trainer.NextTokenLoss(model, tokens).backward();
        adamW.Optimizer.step();
    }

    [Fact]
    public void Name_keyed_state_restores_into_an_optimizer_built_in_another_parameter_order()
    {
        var settings = Settings with { WeightDecay = 0.1 };
        using var batches = new Generator(11);
        var tokens = Enumerable.Range(0, 8).Select(_ => Counting(batches).Tokens).ToList();
        string path = Path.Combine(_root, "optimizer.safetensors");
        Directory.CreateDirectory(_root);

        using var original = TinyModel();
        using var originalAdamW = new NamedAdamW(original.named_parameters(), settings);
        foreach (var t in tokens[..4]) Step(original, originalAdamW, t);
        originalAdamW.Save(path);
        var weights = original.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        using var reordered = TinyModel();
        reordered.LoadStateDict(weights);
        using var reorderedAdamW = new NamedAdamW(reordered.named_parameters().Reverse(), settings);
        reorderedAdamW.Load(path);

        using var fresh = TinyModel(); // same weights, zero moments: shows the moments change the continuation
        fresh.LoadStateDict(weights);
        using var freshAdamW = new NamedAdamW(fresh.named_parameters(), settings);

        foreach (var t in tokens[4..])
        {
            Step(original, originalAdamW, t);
            Step(reordered, reorderedAdamW, t);
            Step(fresh, freshAdamW, t);
        }
        AssertSameWeights(original, reordered);
        Assert.False(original.named_parameters().First(p => p.name == "blocks.0.attn.W_K").parameter
            .eq(fresh.named_parameters().First(p => p.name == "blocks.0.attn.W_K").parameter).all().item<bool>());
    }

    [Fact]
    public void State_missing_a_parameter_fails_naming_it()
    {
        Directory.CreateDirectory(_root);
        string path = Path.Combine(_root, "optimizer.safetensors");
        using var model = TinyModel();
        using (var partial = new NamedAdamW(model.named_parameters().Where(p => p.name != "blocks.0.attn.W_K"), Settings))
            partial.Save(path);

        using var full = new NamedAdamW(model.named_parameters(), Settings);
        var e = Assert.Throws<CheckpointException>(() => full.Load(path));
        Assert.Contains("no AdamW state for blocks.0.attn.W_K", e.Message);
        Assert.Equal(path, e.FilePath);
    }

    [Fact]
    public void Resuming_with_other_frozen_parameters_fails_naming_them()
    {
        var (straight, _, folder) = TrainStoppingAtSix();
        straight.Dispose();
        using var model = TinyModel();
        foreach (var (_, p) in model.named_parameters().Where(p => p.name.StartsWith("blocks.0.attn.b_", StringComparison.Ordinal)))
            p.requires_grad = false;

        var e = Assert.Throws<CheckpointException>(() => Resume(model, folder));
        Assert.Contains("has AdamW state for blocks.0.attn.b_Q, blocks.0.attn.b_K, blocks.0.attn.b_V", e.Message);
        Assert.Contains("which this run does not optimise", e.Message);
    }

    /// <summary>
    /// Rewrites the step-6 checkpoint as an older SharpLens wrote it from a model that registered its parameters in
    /// reverse: model.safetensors in that order, TorchSharp's positional optimizer.bin following it, and no manifest.json.
    /// </summary>
    static void MakeOldFormatInReverseOrder(string checkpointFolder)
    {
        using var model = TrainingCheckpoint.LoadModel(checkpointFolder);
        var reversed = model.named_parameters().Reverse().ToList();
        using var adamW = new NamedAdamW(reversed, Settings);
        string named = Path.Combine(checkpointFolder, TrainingCheckpoint.OptimizerFile);
        adamW.Load(named);
        adamW.Optimizer.save_state_dict(Path.Combine(checkpointFolder, TrainingCheckpoint.PositionalOptimizerFile));
        File.Delete(named);
        File.Delete(Path.Combine(checkpointFolder, CheckpointManifest.FileName)); // nor did it write a manifest
        SafeTensorsWriter.Write(Path.Combine(checkpointFolder, TrainingCheckpoint.WeightsFile),
            reversed.Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
    }

    [Fact]
    public void Old_positional_optimizer_file_written_in_another_order_still_resumes_exactly()
    {
        var (straight, straightRecord, folder) = TrainStoppingAtSix();
        string six = TrainingCheckpoint.FolderFor(folder, 6);
        MakeOldFormatInReverseOrder(six);
        using (var weights = SafeTensorsFile.Open(Path.Combine(six, TrainingCheckpoint.WeightsFile)))
            Assert.Equal(straight.named_parameters().Select(p => p.name).Reverse(), weights.Names);

        using var resumed = TinyModel();
        var record = Resume(resumed, folder);

        Assert.Equal(6, record.ResumedFrom);
        Assert.Equal(straightRecord.Losses, record.Losses);
        AssertSameWeights(straight, resumed);
        straight.Dispose();
    }

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}
