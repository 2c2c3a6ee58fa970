using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace SharpLens.Native;

/// <summary>
/// Makes TorchSharp's native glue load on hosts whose libstdc++ is older than the one it was linked against.
/// </summary>
/// <remarks>
/// TorchSharp 0.107's <c>libLibTorchSharp.so</c> requires GLIBCXX_3.4.32 (GCC 13) for a single marker symbol,
/// <c>_ZSt21ios_base_library_initv</c>, that nothing relocates against; Debian 12 and Ubuntu 22.04 ship GCC 12's
/// libstdc++ (up to 3.4.30). We first load the library as it is. Only if the loader refuses it for that version
/// do we write a copy, with that one requirement marked weak, into a per-user cache keyed by the original's hash,
/// and hand TorchSharp the copy. The NuGet cache and the build output are never modified, so rebuilds and
/// read-only tool installs are fine. This runs when the SharpLens assembly is first used.
/// </remarks>
public static class TorchNative
{
    const string GlueName = "LibTorchSharp";
    const string GlueFile = "libLibTorchSharp.so";
    const string MissingVersion = "GLIBCXX_3.4.32";
    static readonly string[] Dependencies = ["libc10.so", "libtorch_cpu.so", "libtorch.so"];

    static readonly Lock Gate = new();
    static bool _attempted;
    static Exception? _failure;

    /// <summary>Where the patched copy went, when one was needed (null: the original loaded as it is).</summary>
    public static string? PatchedCopyPath { get; private set; }

    // TorchSharp finds its glue with NativeLibrary.TryLoad(name, assembly), which ignores DllImport resolvers but
    // does fall back to a plain dlopen("libLibTorchSharp.so"); glibc answers that with an already loaded library of
    // that soname. So loading the right file before TorchSharp's first call is all it takes.
    /// <summary>Loads the native glue if it has not been loaded yet; never throws (see <see cref="EnsureLoaded"/>).</summary>
#pragma warning disable CA2255 // a library initializer is the point: consumers need no call of their own
    [ModuleInitializer]
#pragma warning restore CA2255
    public static void Preload()
    {
        lock (Gate)
        {
            if (_attempted || !OperatingSystem.IsLinux()) return;
            _attempted = true;
            try { LoadGlue(); }
            catch (TorchNativeLoadException e) { _failure = e; }
        }
    }

    /// <summary>Throws the one-paragraph explanation if the native library could not be loaded.</summary>
    /// <exception cref="TorchNativeLoadException">What is wrong and what to install.</exception>
    public static void EnsureLoaded()
    {
        Preload();
        if (_failure is not null) throw _failure;
    }

    static void LoadGlue()
    {
        if (Locate() is not var (original, libtorchDir)) return; // let TorchSharp's own search and messages take over

        // In an app, libtorch sits beside the glue and the glue's $ORIGIN runpath finds it. Loaded straight from NuGet
        // packages (notebooks, F# scripts), libtorch is in another package's folder: load it by path first.
        if (!SameFolder(libtorchDir, Path.GetDirectoryName(original)!)) LoadDependencies(libtorchDir);
        try { NativeLibrary.Load(original); }
        catch (DllNotFoundException e) when (e.Message.Contains(MissingVersion))
        {
            string copy = PatchedCopy(original);
            // The copy lives elsewhere, so its $ORIGIN runpath no longer finds libtorch: load them by path first.
            LoadDependencies(libtorchDir);
            try
            {
                NativeLibrary.Load(copy);
                PatchedCopyPath = copy;
            }
            catch (DllNotFoundException inner)
            {
                throw new TorchNativeLoadException(original, inner);
            }
        }
        catch (DllNotFoundException e)
        {
            throw new TorchNativeLoadException(original, e);
        }
    }

    static void LoadDependencies(string dir)
    {
        foreach (var dep in Dependencies)
        {
            string path = Path.Combine(dir, dep);
            if (File.Exists(path)) NativeLibrary.Load(path);
        }
    }

    static bool SameFolder(string a, string b) =>
        string.Equals(Path.GetFullPath(a).TrimEnd('/'), Path.GetFullPath(b).TrimEnd('/'), StringComparison.Ordinal);

    /// <summary>The glue library and the folder holding libtorch (the same folder in an app; two packages in a notebook).</summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "An empty Location (single-file apps) falls back to AppContext.BaseDirectory.")]
    static (string Glue, string LibtorchDir)? Locate()
    {
        var dirs = new List<string>();
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string searchDirs)
            dirs.AddRange(searchDirs.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        string location = typeof(TorchSharp.torch).Assembly.Location;
        string torchDir = (string.IsNullOrEmpty(location) ? null : Path.GetDirectoryName(location)) ?? AppContext.BaseDirectory;
        string rid = RuntimeInformation.RuntimeIdentifier;
        dirs.Add(torchDir);
        dirs.Add(Path.Combine(torchDir, "runtimes", rid, "native"));
        dirs.Add(Path.Combine(torchDir, "runtimes", "linux-x64", "native"));
        // TorchSharp's own notebook fallback copies every native it needs into <torchsharp>/lib/net8.0/cpu/.
        dirs.Add(Path.Combine(torchDir, "cpu"));
        foreach (var dir in dirs)
        {
            string glue = Path.Combine(dir, GlueFile);
            if (File.Exists(glue)) return (glue, dir);
        }

        // Loaded from the NuGet cache: <root>/torchsharp/<version>/lib/net8.0/TorchSharp.dll, with the glue in
        // <root>/torchsharp/<version>/runtimes/<rid>/native/ and libtorch in <root>/libtorch-cpu-<rid>/<version>/runtimes/<rid>/native/.
        string home = Path.GetFullPath(Path.Combine(torchDir, "..", ".."));
        string root = Path.GetFullPath(Path.Combine(home, "..", ".."));
        string packageGlue = Path.Combine(home, "runtimes", "linux-x64", "native", GlueFile);
        string libtorchPackage = Path.Combine(root, "libtorch-cpu-linux-x64");
        if (!File.Exists(packageGlue) || !Directory.Exists(libtorchPackage)) return null;
        var libtorch = Directory.GetDirectories(libtorchPackage)
            .Select(version => Path.Combine(version, "runtimes", "linux-x64", "native"))
            .Where(native => File.Exists(Path.Combine(native, "libtorch_cpu.so")))
            .OrderByDescending(native => native, StringComparer.Ordinal)
            .FirstOrDefault();
        return libtorch is null ? null : (packageGlue, libtorch);
    }

    /// <summary>Writes (once) the weak-version copy of <paramref name="original"/> and returns its path.</summary>
    internal static string PatchedCopy(string original, string? cacheRoot = null)
    {
        byte[] bytes = File.ReadAllBytes(original);
        string key = Convert.ToHexString(SHA256.HashData(bytes))[..16].ToLowerInvariant();
        string dir = Path.Combine(cacheRoot ?? NativeCacheRoot(), key);
        string target = Path.Combine(dir, GlueFile);
        if (File.Exists(target)) return target;

        if (ElfVersionNeedPatch.MarkWeak(bytes, MissingVersion, original) == 0)
            throw new TorchNativeLoadException(original, new DllNotFoundException(
                $"{original} does not list {MissingVersion} as a requirement, so marking it weak cannot help."));
        Directory.CreateDirectory(dir);
        // Write beside the target and rename, so a crash never leaves a half-written library to be loaded later.
        IO.AtomicFile.WriteAllBytes(target, bytes);
        return target;
    }

    static string NativeCacheRoot()
    {
        string? env = Environment.GetEnvironmentVariable("SHARPLENS_NATIVE_CACHE");
        if (!string.IsNullOrEmpty(env)) return env;
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string baseDir = !string.IsNullOrEmpty(xdg) ? xdg
            : !string.IsNullOrEmpty(home) ? Path.Combine(home, ".cache")
            : Path.GetTempPath();
        return Path.Combine(baseDir, "sharplens", "native");
    }
}

/// <summary>TorchSharp's native library could not be loaded, even after the libstdc++ workaround.</summary>
public sealed class TorchNativeLoadException(string library, Exception inner) : SharpLensException(
    $"SharpLens could not load TorchSharp's native library {library}: {inner.Message} " +
    "It needs libtorch from the TorchSharp-cpu (or a TorchSharp-cuda) package next to it, and a C++ runtime at " +
    "least as new as GCC 12's libstdc++ (GLIBCXX_3.4.30; a copy with the GLIBCXX_3.4.32 marker made weak is tried " +
    "automatically). Reference TorchSharp-cpu in the application, or install a newer libstdc++6 " +
    "(e.g. 'apt-get install libstdc++6' from a release with GCC 13 or later), and set SHARPLENS_NATIVE_CACHE to a " +
    "writable folder if the default cache (~/.cache/sharplens/native) is not writable.", inner)
{
    public string Library { get; } = library;
}
