// Compiled into every C# project that references SharpLens (buildTransitive/SharpLens.targets adds it; set
// <SharpLensNativeInit>false</SharpLensNativeInit> to opt out). It loads TorchSharp's native glue, with the fix for
// hosts whose libstdc++ predates GCC 13, before any code of this assembly can touch TorchSharp: once TorchSharp's
// own loader has failed, it never tries again.
#pragma warning disable CA2255
internal static class SharpLensNativeInit
{
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void LoadTorchNative() => SharpLens.Native.TorchNative.Preload();
}
