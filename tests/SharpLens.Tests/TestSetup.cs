using System.Runtime.CompilerServices;
using TorchSharp;

namespace SharpLens.Tests;

static class TestSetup
{
    /// <summary>
    /// xUnit runs test classes in parallel, one per core; each libtorch op then gets one thread instead of fighting
    /// over both cores (the test models are tiny, and oversubscription made them up to ten times slower).
    /// </summary>
    [ModuleInitializer]
    internal static void OneTorchThreadPerTestWorker()
    {
        // Module initializers run in no promised order: load the native glue first, before touching torch.
        SharpLens.Native.TorchNative.EnsureLoaded();
        torch.set_num_threads(1);
    }
}
