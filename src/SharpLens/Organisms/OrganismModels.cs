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

#pragma warning disable CA2255 // a library module initializer on purpose: it only adds two entries to the loader's table
    [ModuleInitializer]
    internal static void Register()
    {
        ModelLoader.Register(Induction);
        ModelLoader.Register(Latent);
    }
#pragma warning restore CA2255
}
