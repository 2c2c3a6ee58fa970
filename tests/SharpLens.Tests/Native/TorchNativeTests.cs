using System.Text;
using SharpLens.Native;
using TorchSharp;

namespace SharpLens.Tests.Native;

public class TorchNativeTests
{
    static string OriginalGlue()
    {
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"),
            Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so"),
        ];
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException("libLibTorchSharp.so is not in the test output");
    }

    static bool HostHasVersion(string version)
    {
        string[] libs = ["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6"];
        var lib = libs.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException("no libstdc++.so.6 found");
        byte[] bytes = File.ReadAllBytes(lib);
        return bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(version + "\0")) >= 0;
    }

    [Fact]
    public void Marking_the_GLIBCXX_marker_weak_changes_exactly_one_byte()
    {
        string original = OriginalGlue();
        byte[] bytes = File.ReadAllBytes(original);
        var before = ElfVersionNeedPatch.Read(bytes, original);
        Assert.Contains(before, n => n.Name == "GLIBCXX_3.4.32" && !n.Weak);

        byte[] patched = (byte[])bytes.Clone();
        Assert.Equal(1, ElfVersionNeedPatch.MarkWeak(patched, "GLIBCXX_3.4.32", original));
        int changed = Enumerable.Range(0, bytes.Length).Count(i => bytes[i] != patched[i]);
        Assert.Equal(1, changed);

        var after = ElfVersionNeedPatch.Read(patched, original);
        Assert.Equal(before.Select(n => n.Name), after.Select(n => n.Name));
        Assert.All(after, n => Assert.Equal(n.Name == "GLIBCXX_3.4.32" || before.Single(b => b.FlagsOffset == n.FlagsOffset).Weak, n.Weak));
    }

    [Fact]
    public void The_copy_is_made_only_when_the_host_lacks_the_version()
    {
        TorchNative.EnsureLoaded();
        using var t = torch.ones(3, 3).matmul(torch.ones(3, 3));
        Assert.Equal(27f, t.sum().item<float>());

        if (HostHasVersion("GLIBCXX_3.4.32"))
            Assert.Null(TorchNative.PatchedCopyPath);
        else
        {
            Assert.NotNull(TorchNative.PatchedCopyPath);
            var copy = File.ReadAllBytes(TorchNative.PatchedCopyPath!);
            Assert.Contains(ElfVersionNeedPatch.Read(copy, TorchNative.PatchedCopyPath!), n => n.Name == "GLIBCXX_3.4.32" && n.Weak);
            // The original in the build output is left exactly as the package shipped it.
            Assert.Contains(ElfVersionNeedPatch.Read(File.ReadAllBytes(OriginalGlue()), OriginalGlue()), n => n.Name == "GLIBCXX_3.4.32" && !n.Weak);
        }
    }

    [Fact]
    public void Referencing_SharpLens_compiles_the_native_initializer_into_the_consumer()
    {
        // buildTransitive/SharpLens.targets adds it to every C# project that references SharpLens (this one included).
        var init = typeof(TorchNativeTests).Assembly.GetType("SharpLensNativeInit");
        Assert.NotNull(init);
        Assert.NotNull(init!.GetMethod("LoadTorchNative", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic));
    }

    [Fact]
    public void Autograd_works_through_the_loaded_library()
    {
        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(new float[] { 1, 2, 3 }, requires_grad: true);
        (x * x).sum().backward();
        Assert.Equal(new float[] { 2, 4, 6 }, x.grad!.data<float>().ToArray());
    }

    [Fact]
    public void The_patched_copy_is_written_once_into_the_cache_and_nowhere_else()
    {
        string root = Path.Combine(Path.GetTempPath(), "sharplens-native-test-" + Guid.NewGuid().ToString("N"));
        try
        {
            string first = TorchNative.PatchedCopy(OriginalGlue(), root);
            var stamp = File.GetLastWriteTimeUtc(first);
            string second = TorchNative.PatchedCopy(OriginalGlue(), root);
            Assert.Equal(first, second);
            Assert.Equal(stamp, File.GetLastWriteTimeUtc(second));
            Assert.Single(Directory.GetFiles(root, "*", SearchOption.AllDirectories)); // no temp file left behind
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }

    [Fact]
    public void A_file_that_is_not_ELF_is_refused_by_name()
    {
        var e = Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatch.Read(Encoding.ASCII.GetBytes("not an elf file at all, just text........................................"), "notes.txt"));
        Assert.Contains("notes.txt", e.Message);
        byte[] truncated = File.ReadAllBytes(OriginalGlue())[..0x40];
        Assert.Throws<InvalidDataException>(() => ElfVersionNeedPatch.Read(truncated, "truncated.so"));
    }
}
