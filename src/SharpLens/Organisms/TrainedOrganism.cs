using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>What an organism's settings record gives the cache: a name that changes with the settings, and their JSON.</summary>
public interface IOrganismSettings
{
    string CacheName { get; }
    string ToJson();
}

/// <summary>
/// A trained model organism: the model, its training curve, and whether it came from the cache
/// (<c>~/.cache/sharplens/organisms/&lt;CacheName&gt;/</c>, see <see cref="OrganismCache"/>).
/// </summary>
public abstract class TrainedOrganism<TSettings> : IDisposable where TSettings : IOrganismSettings
{
    protected TrainedOrganism(TSettings settings, HookedTransformer model, TrainingRecord training, string? cacheFolder)
    {
        (Settings, Model, Training, CacheFolder) = (settings, model, training, cacheFolder);
        FromCache = cacheFolder is not null;
    }

    public TSettings Settings { get; }
    public HookedTransformer Model { get; }
    public TrainingRecord Training { get; }
    /// <summary>True when the weights were read from the cache rather than trained in this process.</summary>
    public bool FromCache { get; }
    /// <summary>The cache folder it was read from or saved to, if any.</summary>
    public string? CacheFolder { get; private set; }

    /// <summary>Writes the model (SharpLens's format), settings and training curve to <paramref name="folder"/>, atomically.</summary>
    public void Save(string folder)
    {
        OrganismCache.Save(folder, Model, Settings.ToJson(), Training);
        CacheFolder = Path.GetFullPath(folder);
    }

    public void Dispose()
    {
        Model.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The cached organism with exactly these settings if the cache holds an intact one; otherwise <paramref name="train"/>
    /// trains it and it is saved there. <paramref name="retrain"/> ignores (and replaces) a cached copy.
    /// </summary>
    protected static TOrganism TrainOrLoad<TOrganism>(TSettings settings, string? cacheRoot, bool retrain, Func<TOrganism> train,
        Func<HookedTransformer, TrainingRecord, string, TOrganism> fromCache) where TOrganism : TrainedOrganism<TSettings>
    {
        string folder = OrganismCache.FolderFor(settings.CacheName, cacheRoot);
        if (!retrain && TryLoad(settings, folder, fromCache) is { } cached) return cached;
        var organism = train();
        organism.Save(folder);
        return organism;
    }

    /// <summary>The organism saved in <paramref name="folder"/> with exactly these settings, or null when it is absent or unreadable.</summary>
    protected static TOrganism? TryLoad<TOrganism>(TSettings settings, string folder,
        Func<HookedTransformer, TrainingRecord, string, TOrganism> fromCache) where TOrganism : TrainedOrganism<TSettings> =>
        OrganismCache.TryLoad(folder, settings.ToJson()) is { } saved ? fromCache(saved.Model, saved.Training, Path.GetFullPath(folder)) : null;

    /// <summary>A fresh model of <paramref name="config"/> trained on <paramref name="batches"/>; disposed if training fails.</summary>
    protected static (HookedTransformer Model, TrainingRecord Training) TrainModel(ModelConfig config, long seed, TrainingSettings training,
        Func<int, TorchSharp.torch.Generator, TrainingBatch> batches, IProgress<TrainingProgress>? progress, CancellationToken cancellation)
    {
        var model = new HookedTransformer(config, seed: seed);
        try { return (model, Trainer.Train(model, training, batches, progress, cancellation)); }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
