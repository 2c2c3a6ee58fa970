using SharpLens.Organisms;
using TorchSharp;

namespace SharpLens.Tests.Organisms;

/// <summary>Trains one small planted-latent organism for every test class in the "latent organism" collection.</summary>
public sealed class SmallLatentOrganism : IDisposable
{
    public static readonly LatentSettings Settings = new();

    public LatentOrganism Organism { get; }

    public SmallLatentOrganism()
    {
        // Tiny matrices: one thread avoids the synchronisation that makes a busy 2-core machine ten times slower.
        torch.set_num_threads(1);
        Organism = LatentOrganism.Train(Settings);
    }

    public void Dispose() => Organism.Dispose();
}

[CollectionDefinition("latent organism")]
public sealed class LatentOrganismCollection : ICollectionFixture<SmallLatentOrganism>;

/// <summary>One small induction organism shared by the technique tests that need a no-norm model with a known circuit.</summary>
[CollectionDefinition("induction organism for techniques")]
public sealed class InductionTechniquesCollection : ICollectionFixture<SmallInductionOrganism>;
