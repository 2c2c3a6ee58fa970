using System.Runtime.InteropServices;
using SharpLens.Models;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Loading;

/// <summary>Memory measurements need the process to themselves: this collection runs after the parallel ones, alone.</summary>
[CollectionDefinition(nameof(LoadingMemory), DisableParallelization = true)]
public sealed class LoadingMemory;

[Collection(nameof(LoadingMemory))]
public class LoadingMemoryTests(ITestOutputHelper output)
{
    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int MallocTrim(nuint pad);

    /// <summary>Anonymous resident memory (heap, not the page cache behind a memory-mapped file), from /proc.</summary>
    static long RssAnonBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("RssAnon:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        throw new PlatformNotSupportedException("/proc/self/status has no RssAnon line");
    }

    [Fact]
    public void Loading_a_checkpoint_takes_at_most_1_2_times_the_weights_in_memory()
    {
        using var dir = new TempFolder();
        var cfg = new ModelConfig
        {
            DModel = 256, NLayers = 2, NHeads = 4, DHead = 64, DMlp = 1024, DVocab = 20000, NCtx = 128,
            TiedEmbeddings = false, ModelName = "memory-probe",
        };
        long weightBytes;
        using (var model = LoadingTestKit.RandomModel(cfg))
        {
            weightBytes = model.parameters().Sum(p => p.numel()) * 4;
            model.SaveHuggingFace(dir.Path);
        }
        // One-time costs (JIT, libtorch's thread pool and kernels) are the process's, not the checkpoint's: pay them first
        // on the two small fixtures, which take the same paths (direct copies, staged transposed and converted copies).
        HookedTransformer.FromPretrained(LoadingTestKit.Fixture("gpt2-tiny-tied"), processing: WeightProcessingOptions.None).Dispose();
        HookedTransformer.FromPretrained(LoadingTestKit.Fixture("gpt2-tiny-untied-f16"), processing: WeightProcessingOptions.None).Dispose();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        MallocTrim(0); // hand freed heap pages back, so the baseline is what is really in use
        long baseline = RssAnonBytes(), peak = baseline;

        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, RssAnonBytes());
                Thread.Sleep(1);
            }
        });
        sampler.Start();
        var started = DateTime.UtcNow;
        using var loaded = HookedTransformer.FromPretrained(dir.Path, processing: WeightProcessingOptions.None);
        var elapsed = DateTime.UtcNow - started;
        stop.Cancel();
        sampler.Join();
        peak = Math.Max(peak, RssAnonBytes());

        double ratio = (double)(peak - baseline) / weightBytes;
        output.WriteLine($"weights {weightBytes / 1e6:F1} MB, peak anonymous memory during load +{(peak - baseline) / 1e6:F1} MB = {ratio:F2}x, {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(ratio <= 1.2, $"loading took {ratio:F2}x the weights' {weightBytes / 1e6:F1} MB");
    }
}
