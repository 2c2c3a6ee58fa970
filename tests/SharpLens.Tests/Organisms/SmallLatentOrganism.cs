using SharpLens.Organisms;

namespace SharpLens.Tests.Organisms;

/// <summary>Trains one small planted-latent organism for every test class in the "latent organism" collection.</summary>
public sealed class SmallLatentOrganism : IDisposable
{
    public static readonly LatentSettings Settings = new();

    public LatentOrganism Organism { get; }

    public SmallLatentOrganism()
    {
        Organism = LatentOrganism.Train(Settings);
    }

    public void Dispose() => Organism.Dispose();
}

[CollectionDefinition("latent organism")]
public sealed class LatentOrganismCollection : ICollectionFixture<SmallLatentOrganism>;
