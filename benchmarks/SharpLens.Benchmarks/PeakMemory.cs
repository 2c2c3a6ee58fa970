using System.Runtime.InteropServices;

namespace SharpLens.Benchmarks;

/// <summary>
/// Peak resident memory of this process over a stretch of code, from Linux's /proc/self/status.
/// </summary>
/// <remarks>
/// TorchSharp exposes no allocator statistics for CPU tensors, and libtorch's CPU allocator is plain malloc, so
/// the process's resident set is what tensors cost. Method: hand freed heap pages back to the kernel
/// (glibc <c>malloc_trim(0)</c>, so memory freed earlier cannot be silently reused and hide growth), reset the
/// kernel's high-water mark VmHWM to the current VmRSS (writing "5" to /proc/self/clear_refs), note VmRSS,
/// run the code, and read VmHWM: its rise is the peak extra memory the code needed, exact to the page,
/// however briefly it was held. Where the reset is not allowed, a thread samples VmRSS every millisecond instead.
/// </remarks>
public static class PeakMemory
{
    /// <summary>Peak resident bytes above the starting point while <paramref name="action"/> runs.</summary>
    public static (long PeakExtraBytes, string Method) Measure(Action action)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        TrimHeap();
        if (TryResetHighWaterMark())
        {
            long before = Read("VmRSS");
            action();
            return (Read("VmHWM") - before, "VmHWM after clear_refs reset");
        }
        return Sampled(action);
    }

    static (long, string) Sampled(Action action)
    {
        long before = Read("VmRSS"), peak = before;
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, Read("VmRSS"));
                Thread.Sleep(1);
            }
        });
        action();
        peak = Math.Max(peak, Read("VmRSS"));
        stop.Cancel();
        sampler.Wait();
        return (peak - before, "VmRSS sampled every 1 ms");
    }

    /// <summary>A field of /proc/self/status ("VmRSS", "VmHWM") in bytes.</summary>
    public static long Read(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0]) * 1024; // the kernel reports kB
        throw new InvalidOperationException($"/proc/self/status has no field '{field}'; peak memory needs Linux.");
    }

    static bool TryResetHighWaterMark()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static void TrimHeap()
    {
        try { malloc_trim(0); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc: nothing to trim
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    static extern int malloc_trim(nuint pad);
}
