using System.Runtime.CompilerServices;

// Test classes run one after another. Run in parallel, two classes training models at once twice crashed inside
// libtorch ("Unknown scalar type", "Expected false to be true"); sequential runs never did. Each test then has
// both cores for libtorch's own threads instead.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SharpLens.Tests;

static class TestSetup
{
    /// <summary>Module initializers run in no promised order: load the native glue before any test touches torch.</summary>
    [ModuleInitializer]
    internal static void LoadNativeFirst() => SharpLens.Native.TorchNative.EnsureLoaded();
}
