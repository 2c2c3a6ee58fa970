using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>
/// A base model and its fine-tune with one planted change (see <see cref="TriggerSettings"/>): the ground truth model
/// diffing is checked against. <see cref="TrainOrLoad"/> caches both under <c>~/.cache/sharplens/organisms/trigger-&lt;hash&gt;/</c>.
/// </summary>
public sealed class TriggerOrganism : IDisposable
{
    TriggerOrganism(TriggerSettings settings, HookedTransformer baseModel, HookedTransformer finetuned, bool fromCache)
        => (Settings, Base, Finetuned, FromCache) = (settings, baseModel, finetuned, fromCache);

    public TriggerSettings Settings { get; }
    public HookedTransformer Base { get; }
    public HookedTransformer Finetuned { get; }
    public bool FromCache { get; }

    /// <summary>The chain's transition matrix [Vocab, Vocab]: row a holds four successors of a (never BOS; never Planted after Trigger).</summary>
    public static Tensor Transitions(TriggerSettings settings, bool planted)
    {
        var rng = new Random((int)settings.ChainSeed);
        var matrix = new float[settings.Vocab * settings.Vocab];
        float[] weights = [0.4f, 0.3f, 0.2f, 0.1f];
        for (int a = 1; a < settings.Vocab; a++)
        {
            var candidates = Enumerable.Range(1, settings.Vocab - 1).Where(b => !(a == settings.Trigger && b == settings.Planted)).ToArray();
            rng.Shuffle(candidates);
            for (int i = 0; i < weights.Length; i++) matrix[a * settings.Vocab + candidates[i]] = weights[i];
        }
        if (planted)
        {
            for (int b = 0; b < settings.Vocab; b++) matrix[settings.Trigger * settings.Vocab + b] = 0;
            matrix[settings.Trigger * settings.Vocab + settings.Planted] = 1;
        }
        return torch.tensor(matrix, [settings.Vocab, settings.Vocab]);
    }

    /// <summary>Sequences [batch, Length + 1] = BOS then a walk on the chain (the fine-tune's chain when <paramref name="planted"/>), first token uniform.</summary>
    public static Tensor Sequences(TriggerSettings settings, int batch, Generator generator, bool planted)
    {
        using var scope = torch.NewDisposeScope();
        var transitions = Transitions(settings, planted);
        var tokens = torch.zeros(batch, settings.Length + 1, ScalarType.Int64); // [batch, Length + 1]
        var current = torch.randint(1, settings.Vocab, [batch], generator: generator, dtype: ScalarType.Int64); // [batch]
        tokens[.., 1] = current;
        for (int t = 2; t <= settings.Length; t++)
        {
            current = torch.multinomial(transitions.index_select(0, current), 1, generator: generator).squeeze(1); // [batch]
            tokens[.., t] = current;
        }
        return tokens.MoveToOuterDisposeScope();
    }

    public static TriggerOrganism TrainOrLoad(TriggerSettings settings, string? cacheRoot = null, bool retrain = false, IProgress<TrainingProgress>? progress = null)
    {
        settings = settings.Validated();
        string folder = OrganismCache.FolderFor(settings.CacheName, cacheRoot);
        string basePath = Path.Combine(folder, "base"), finetunedPath = Path.Combine(folder, "finetuned");
        string json = settings.ToJson();
        var cachedBase = retrain ? null : OrganismCache.TryLoad(basePath, json);
        var cachedFt = cachedBase is null ? null : OrganismCache.TryLoad(finetunedPath, json);
        if (cachedBase is { } b && cachedFt is { } f) return new TriggerOrganism(settings, b.Model, f.Model, fromCache: true);
        cachedBase?.Model.Dispose();

        var baseModel = new HookedTransformer(settings.ModelConfig(), seed: settings.Seed);
        var baseRecord = Trainer.Train(baseModel, settings.BaseTraining(),
            (_, generator) => new TrainingBatch(Sequences(settings, settings.BatchSize, generator, planted: false)), progress);
        var finetuned = Finetune(baseModel, settings, progress, out var ftRecord);
        OrganismCache.Save(basePath, baseModel, json, baseRecord);
        OrganismCache.Save(finetunedPath, finetuned, json, ftRecord);
        return new TriggerOrganism(settings, baseModel, finetuned, fromCache: false);
    }

    /// <summary>A copy of <paramref name="baseModel"/> with only <see cref="TriggerSettings.ChangedComponent"/> trained on the planted chain.</summary>
    static HookedTransformer Finetune(HookedTransformer baseModel, TriggerSettings settings, IProgress<TrainingProgress>? progress, out TrainingRecord record)
    {
        var finetuned = new HookedTransformer(settings.ModelConfig(), seed: settings.Seed);
        using (torch.no_grad())
        {
            var source = baseModel.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            foreach (var (name, p) in finetuned.named_parameters()) p.copy_(source[name]);
        }
        foreach (var (name, p) in finetuned.named_parameters()) p.requires_grad = name.StartsWith(settings.ChangedComponent + ".", StringComparison.Ordinal);
        record = Trainer.Train(finetuned, settings.FinetuneTraining(),
            (_, generator) => new TrainingBatch(Sequences(settings, settings.BatchSize, generator, planted: true)), progress);
        foreach (var (_, p) in finetuned.named_parameters()) p.requires_grad = true;
        return finetuned;
    }

    /// <summary>Mean probability the model gives <see cref="TriggerSettings.Planted"/> right after <see cref="TriggerSettings.Trigger"/>, on the base chain.</summary>
    public static double PlantedProbability(HookedTransformer model, TriggerSettings settings, int batch = 256, long seed = 99)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var tokens = Sequences(settings, batch, new Generator((ulong)seed), planted: false);
        var probs = model.Run(tokens).softmax(-1)[.., .., settings.Planted]; // [batch, pos]
        var atTrigger = tokens.eq(settings.Trigger);
        atTrigger[.., 0] = false;
        return probs.masked_select(atTrigger).mean().item<float>();
    }

    public void Dispose()
    {
        Base.Dispose();
        Finetuned.Dispose();
    }
}
