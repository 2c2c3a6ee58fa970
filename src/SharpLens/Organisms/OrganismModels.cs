using System.Runtime.CompilerServices;
using SharpLens.Loading;

namespace SharpLens.Organisms;

/// <summary>
/// The organisms as named models of <see cref="ModelLoader"/>: <c>ModelLoader.Load("induction")</c> trains the organism
/// on first use and then loads it from the cache. Registered when the library loads, so the loader (which must not
/// depend on organisms, which use techniques) knows them without naming them.
/// </summary>
public static class OrganismModels
{
    // The organism's model is the whole of it: disposing the model frees the organism.
    public static readonly NamedModel Induction = new("induction", Organism.Names["induction"], options => Organism.Load("induction", cacheRoot: options.CacheFolder));

    public static readonly NamedModel Latent = new("latent", Organism.Names["latent"], options => Organism.Load("latent", cacheRoot: options.CacheFolder));

    /// <summary>brown-lm and brown-lm-tiny, Hugging Face folders in the cache: loaded with the weight processing asked for (none for attribution graphs).</summary>
    public static IReadOnlyList<NamedModel> BrownLanguageModels { get; } = [.. BrownLanguageModel.Names.Select(name => new NamedModel(name, Organism.Names[name],
        options => BrownLanguageModel.Load(name, options.CacheFolder, options.Processing,
            progress: BrownLanguageModel.IsCached(name, options.CacheFolder) ? null : new TrainingProgressLog($"Training {name} on first use (cached afterwards).", Console.Error),
            log: new Progress<string>(Console.Error.WriteLine))))];

#pragma warning disable CA2255 // a library module initializer on purpose: it only adds a few entries to the loader's table
    [ModuleInitializer]
    internal static void Register()
    {
        ModelLoader.Register(Induction);
        ModelLoader.Register(Latent);
        foreach (var brown in BrownLanguageModels) ModelLoader.Register(brown);
    }
#pragma warning restore CA2255
}
