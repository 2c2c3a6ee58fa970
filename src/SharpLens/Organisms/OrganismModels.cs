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
    public static readonly NamedModel Induction = new("induction",
        "the tour's 2-layer attention-only induction organism (trained on first use, then cached)",
        options => InductionOrganism.TrainOrLoad(new InductionSettings(), options.CacheFolder).Model); // the organism's model is the whole of it

    public static readonly NamedModel Latent = new("latent",
        "a 2-layer organism with a planted binary latent: it answers Yes (id 1) when the first token after BOS is in a secret set, else No (id 2) (trained on first use, then cached)",
        options => LatentOrganism.TrainOrLoad(new LatentSettings(), options.CacheFolder).Model);

#pragma warning disable CA2255 // a library module initializer on purpose: it only adds two entries to the loader's table
    [ModuleInitializer]
    internal static void Register()
    {
        ModelLoader.Register(Induction);
        ModelLoader.Register(Latent);
    }
#pragma warning restore CA2255
}
