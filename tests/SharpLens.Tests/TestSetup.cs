using System.Runtime.CompilerServices;

// Test classes run one after another. Run in parallel, two classes training models at once twice crashed inside
// libtorch ("Unknown scalar type", "Expected false to be true"). The cause: TorchSharp does not keep a temporary
// Scalar alive through the native call that reads it, so a garbage collection on another thread can free it mid-call
// (see HeldScalars). Training and the models' forward now hold theirs (ConcurrentTrainingTests), but some 300 other
// implicit Scalars remain across SAEs, crosscoders, techniques and the Learn chapters, so classes still run one at a
// time. Each test then has both cores for libtorch's own threads instead.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace SharpLens.Tests;

static class TestSetup
{
    /// <summary>Module initializers run in no promised order: load the native glue before any test touches torch.</summary>
    [ModuleInitializer]
    internal static void LoadNativeFirst() => SharpLens.Native.TorchNative.EnsureLoaded();
}
