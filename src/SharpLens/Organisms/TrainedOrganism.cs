using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>What an organism's settings record gives the cache: a name that changes with the settings, and their JSON.</summary>
public interface IOrganismSettings
{
    string CacheName { get; }
    string ToJson();
}

/// <summary>Settings that check themselves: <see cref="Validated"/> returns them, or throws naming the bad field.</summary>
public interface IOrganismSettings<TSettings> : IOrganismSettings where TSettings : IOrganismSettings<TSettings>
{
    TSettings Validated();
}

/// <summary>What each organism type gives the shared entry points of <see cref="TrainedOrganism{TSettings, TOrganism}"/>: how it trains, and how a cached model becomes one.</summary>
public interface IOrganism<TSettings, TOrganism>
{
    static abstract TOrganism Train(TSettings settings, IProgress<TrainingProgress>? progress, CancellationToken cancellation);
    static abstract TOrganism FromCache(TSettings settings, HookedTransformer model, TrainingRecord training, string folder);
}

/// <summary>
/// A trained model organism: the model, its training curve, and whether it came from the cache
/// (<c>~/.cache/sharplens/organisms/&lt;CacheName&gt;/</c>, see <see cref="OrganismCache"/>).
/// </summary>
public abstract class TrainedOrganism<TSettings, TOrganism> : IDisposable
    where TSettings : IOrganismSettings<TSettings>
    where TOrganism : TrainedOrganism<TSettings, TOrganism>, IOrganism<TSettings, TOrganism>
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
    /// Reads the organism from <c>&lt;cache&gt;/organisms/&lt;CacheName&gt;/</c> if the cache holds an intact one with exactly
    /// these settings; otherwise trains it and saves it there. <paramref name="retrain"/> ignores (and replaces) a cached copy.
    /// </summary>
    public static TOrganism TrainOrLoad(TSettings settings, string? cacheRoot = null, bool retrain = false,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        settings = settings.Validated();
        string folder = OrganismCache.FolderFor(settings.CacheName, cacheRoot);
        if (!retrain && TryLoad(settings, folder) is { } cached) return cached;
        var organism = TOrganism.Train(settings, progress, cancellation);
        organism.Save(folder);
        return organism;
    }

    /// <summary>The organism saved in <paramref name="folder"/> with exactly these settings, or null when it is absent or unreadable.</summary>
    public static TOrganism? TryLoad(TSettings settings, string folder) =>
        OrganismCache.TryLoad(folder, settings.ToJson()) is { } saved ? TOrganism.FromCache(settings, saved.Model, saved.Training, Path.GetFullPath(folder)) : null;

    /// <summary>
    /// A fresh model of <paramref name="config"/> trained on <paramref name="batches"/>; disposed if training fails.
    /// <paramref name="prepare"/> sees the initialised model before the first step (to freeze a parameter, say).
    /// </summary>
    protected static (HookedTransformer Model, TrainingRecord Training) TrainModel(ModelConfig config, long seed, TrainingSettings training,
        Func<int, TorchSharp.torch.Generator, TrainingBatch> batches, IProgress<TrainingProgress>? progress, CancellationToken cancellation,
        TrainingRunOptions? options = null, Action<HookedTransformer>? prepare = null)
    {
        var model = new HookedTransformer(config, seed: seed);
        try
        {
            prepare?.Invoke(model);
            return (model, Trainer.Train(model, training, batches, options ?? new TrainingRunOptions(), progress, cancellation));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }
}
