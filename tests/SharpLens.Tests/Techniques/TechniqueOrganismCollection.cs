using SharpLens.Tests.Organisms;

namespace SharpLens.Tests.Techniques;

/// <summary>
/// Technique test classes that read the small induction organism share one trained copy (xunit trains it once for the
/// whole collection, about 5 s alone on 2 cores), instead of one per class.
/// </summary>
[CollectionDefinition(Name)]
public sealed class TechniqueOrganismCollection : ICollectionFixture<SmallInductionOrganism>
{
    public const string Name = "small induction organism (techniques)";
}
