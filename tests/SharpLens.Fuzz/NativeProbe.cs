using SharpLens.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Fuzz;

/// <summary>
/// The child process the native-abort tests run: <c>SharpLens.Fuzz.dll native CASE…</c>. Each case makes a call
/// libtorch refuses, inside a C# <c>try/catch</c>, and prints <c>CAUGHT &lt;case&gt; &lt;type&gt;: &lt;message&gt;</c>; the process then
/// exits 0. A case whose refusal escapes as a C++ exception kills the process instead (SIGABRT, "terminate called after
/// throwing an instance of 'c10::Error'") — which is what the tests look for.
/// </summary>
/// <remarks>
/// <c>raw-matmul</c> calls TorchSharp's own <c>matmul</c> (its native side has no C++ catch: it aborts — the root cause);
/// <c>raw-mm</c> makes the same shape error through <c>mm</c>, whose native side catches it (so C++ exceptions from
/// libtorch do reach the glue's handlers on this host: no libstdc++ mismatch). The other cases go through
/// <see cref="UncaughtNativeCalls"/>, which must refuse each before libtorch sees it.
/// </remarks>
public static class NativeProbe
{
    public static readonly string[] GuardedCases =
        ["matmul", "matmul-vector", "matmul-batch", "matmul-scalar", "matmul-dtype", "matmul-bool", "matmul-huge",
         "grad-unused", "grad-not-scalar", "grad-shape", "grad-no-grad", "threads"];

    public static int Run(string[] cases, TextWriter output)
    {
        TorchNative.EnsureLoaded();
        foreach (string name in cases)
        {
            try
            {
                Call(name);
                output.WriteLine($"ACCEPTED {name}");
            }
            catch (Exception e)
            {
                output.WriteLine($"CAUGHT {name} {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
            output.Flush();
        }
        return 0;
    }

#pragma warning disable RS0030 // the raw calls are the point of the raw-* cases
    static void Call(string name)
    {
        using var scope = NewDisposeScope();
        switch (name)
        {
            case "raw-matmul": torch.matmul(ones(2, 3), ones(4, 5)); break;
            case "raw-mm": torch.mm(ones(2, 3), ones(4, 5)); break;
            case "matmul": ones(2, 3).MatMul(ones(4, 5)); break;
            case "matmul-vector": ones(2, 3).MatMul(ones(4)); break;
            case "matmul-batch": ones(2, 5, 3).MatMul(ones(4, 3, 5)); break;
            case "matmul-scalar": ones(3).MatMul(tensor(2f)); break;
            case "matmul-dtype": ones(2, 3).MatMul(ones(3, 5, dtype: ScalarType.Float64)); break;
            case "matmul-bool": ones(2, 3, dtype: ScalarType.Bool).MatMul(ones(3, 5, dtype: ScalarType.Bool)); break;
            case "matmul-huge": ones(1 << 20, 1).MatMul(ones(1, 1 << 20)); break; // a 4 TiB result
            case "grad-unused":
            {
                var x = ones(2, requires_grad: true); var y = ones(2, requires_grad: true);
                UncaughtNativeCalls.Grad([(x * 2).sum()], [y]);
                break;
            }
            case "grad-not-scalar":
            {
                var x = ones(2, requires_grad: true);
                UncaughtNativeCalls.Grad([x * 2], [x]);
                break;
            }
            case "grad-shape":
            {
                var x = ones(2, requires_grad: true);
                UncaughtNativeCalls.Grad([x * 2], [x], [ones(3)]);
                break;
            }
            case "grad-no-grad":
            {
                var x = ones(2, requires_grad: true);
                UncaughtNativeCalls.Grad([(x * 2).sum()], [ones(2)]);
                break;
            }
            case "threads": UncaughtNativeCalls.SetNumThreads(0); break;
            default: throw new ArgumentException($"unknown case '{name}'", nameof(name));
        }
    }
#pragma warning restore RS0030
}
