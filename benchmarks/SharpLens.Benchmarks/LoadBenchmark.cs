using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Benchmarks;

/// <summary>Memory and time to load a Hugging Face GPT-2 checkpoint, against the size of its weights.</summary>
public sealed record LoadResult(long WeightBytes, long PeakExtraBytes, double Seconds)
{
    public double PeakRatio => (double)PeakExtraBytes / WeightBytes;
}

/// <summary>
/// Saves a random GPT-2-shaped model in the Hugging Face layout, then measures loading it back (unprocessed).
/// </summary>
/// <remarks>
/// Memory is the rise of anonymous resident memory (RssAnon: heap and tensors), sampled every millisecond: the
/// checkpoint is memory-mapped, and its page cache is the file's, not a copy the loader made, so VmRSS/VmHWM
/// (which count mapped file pages) would charge the file twice. Target: at most 1.2x the weights.
/// </remarks>
public static class LoadBenchmark
{
    public static LoadResult Run(ModelConfig config, TextWriter? progress = null)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-load-bench-{Guid.NewGuid():N}");
        try
        {
            long weightBytes;
            using (var model = new HookedTransformer(config with { TiedEmbeddings = false }, seed: 3))
            {
                weightBytes = model.parameters().Sum(p => p.numel() * p.ElementSize);
                model.SaveHuggingFace(folder);
            }
            progress?.WriteLine($"saved a {weightBytes / 1e6:F0} MB checkpoint; loading it back");
            // One-time costs (JIT, libtorch's kernels) belong to the process, not the checkpoint: pay them first.
            HookedTransformer.FromPretrained(folder, processing: WeightProcessingOptions.None).Dispose();

            GC.Collect();
            GC.WaitForPendingFinalizers();
            PeakMemory.TrimHeap();
            long baseline = PeakMemory.Read("RssAnon"), peak = baseline;
            using var stop = new CancellationTokenSource();
            var sampler = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    peak = Math.Max(peak, PeakMemory.Read("RssAnon"));
                    Thread.Sleep(1);
                }
            });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            using (var loaded = HookedTransformer.FromPretrained(folder, processing: WeightProcessingOptions.None))
            {
                clock.Stop();
                peak = Math.Max(peak, PeakMemory.Read("RssAnon"));
            }
            stop.Cancel();
            sampler.Wait();
            return new LoadResult(weightBytes, peak - baseline, clock.Elapsed.TotalSeconds);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
