using System.Diagnostics;
using SharpLens.Fuzz;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Reliability;

/// <summary>
/// A libtorch refusal must never abort the process. TorchSharp's glue catches C++ exceptions in almost every entry
/// point, but not in matmul, autograd.grad, set_num_threads (and a few SharpLens does not call): there the
/// exception unwinds into managed frames and the process dies in std::terminate. These tests run each such refusal in
/// a child process (an abort would kill the test host) and require a catchable exception instead.
/// </summary>
public sealed class NativeAbortTests
{
    [Fact]
    public void The_root_cause_is_a_missing_catch_in_TorchSharps_matmul_not_the_cxx_runtime()
    {
        // Same shape error, two entry points: mm's native side catches it, matmul's does not.
        var (mmCode, mmOut, _) = Probe("raw-mm");
        Assert.Equal(0, mmCode);
        Assert.Contains("CAUGHT raw-mm ExternalException: mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", mmOut);

        var (code, stdout, stderr) = Probe("raw-matmul");
        Assert.True(code != 0 && stderr.Contains("terminate called after throwing an instance of 'c10::Error'"),
            $"TorchSharp's own matmul no longer aborts on a shape error (exit {code}: {stdout.Trim()} {stderr.Trim()}); " +
            "if its native side now catches, UncaughtNativeCalls.MatMul and the matmul entry of src/BannedSymbols.txt can go.");
    }

    [Fact]
    public void Every_checked_stand_in_refuses_with_a_catchable_exception_and_the_process_lives_on()
    {
        var (code, stdout, stderr) = Probe(NativeProbe.GuardedCases);
        Assert.True(code == 0, $"the child died (exit {code}) after: {stdout}\n{stderr}");
        foreach (string name in NativeProbe.GuardedCases)
            Assert.Matches($"CAUGHT {name} (TensorOperationException|SharpLensArgumentException): ", stdout);
        Assert.Contains("matmul: cannot multiply [2, 3] by [4, 5]: the first operand's last dimension (3) differs from the second's second-to-last dimension (4).", stdout);
        Assert.Contains("CAUGHT grad-unused TensorOperationException: autograd.grad: input 0 ([2]) was not used to compute the outputs", stdout);
        Assert.Contains("CAUGHT threads SharpLensArgumentException: threads is 0; the number of threads must be at least 1.", stdout);
    }

    [Fact]
    public void Bench_with_zero_threads_is_refused_in_one_paragraph_naming_the_option_not_aborted()
    {
        var (code, stdout, stderr) = Run(Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"), "bench", "--grokking", "--threads", "0");
        _ = stdout;
        Assert.True(code == 2, $"exit {code}: {stderr}");
        Assert.StartsWith("error: ", stderr);
        Assert.Contains("--threads", stderr);
        Assert.DoesNotContain("terminate called", stderr);
        Assert.DoesNotContain('\n', stderr.Trim());
    }

    /// <summary>MatMul's shape rule against libtorch's own result, for every rank pairing torch.matmul has.</summary>
    [Theory]
    [InlineData(new long[] { 3 }, new long[] { 3 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 3 })]
    [InlineData(new long[] { 3 }, new long[] { 3, 4 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 3, 4 })]
    [InlineData(new long[] { 5, 2, 3 }, new long[] { 3, 4 })]
    [InlineData(new long[] { 3 }, new long[] { 5, 3, 4 })]
    [InlineData(new long[] { 5, 2, 3 }, new long[] { 3 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 5, 3, 4 })]
    [InlineData(new long[] { 6, 1, 2, 3 }, new long[] { 5, 3, 4 })]
    [InlineData(new long[] { 1, 2, 3 }, new long[] { 7, 3, 4 })]
    [InlineData(new long[] { 0, 2, 3 }, new long[] { 3, 0 })]
    public void MatMul_has_torch_matmuls_shape_and_values(long[] a, long[] b)
    {
        using var scope = NewDisposeScope();
        var x = randn(a, generator: new Generator(1)); var y = randn(b, generator: new Generator(2));
        var checkedProduct = x.MatMul(y);
        Assert.Equal(UncaughtNativeCalls.MatMulShape(a, b), checkedProduct.shape);
#pragma warning disable RS0030 // the reference
        Assert.True(checkedProduct.eq(x.matmul(y)).all().item<bool>());
#pragma warning restore RS0030
    }

    [Theory]
    [InlineData(new long[] { 3 }, new long[] { 4 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 2, 3 })]
    [InlineData(new long[] { 4, 2, 3 }, new long[] { 5, 3, 4 })]
    [InlineData(new long[] { }, new long[] { 3 })]
    public void MatMul_refuses_what_libtorch_would(long[] a, long[] b)
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<TensorOperationException>(() => zeros(a).MatMul(zeros(b)));
        Assert.Equal("matmul", e.Field);
        Assert.Equal(ErrorKind.Input, ErrorReport.KindOf(e));
    }

    static (int Code, string Stdout, string Stderr) Probe(params string[] cases) =>
        Run([Path.Combine(AppContext.BaseDirectory, "SharpLens.Fuzz.dll"), "native", .. cases]);

    static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) start.ArgumentList.Add(a);
        start.Environment.Remove("SHARPLENS_DEBUG");
        start.Environment["OMP_NUM_THREADS"] = "1";
        // An abort would otherwise write a core file and ask createdump for a crash dump.
        start.Environment["DOTNET_DbgEnableMiniDump"] = "0";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }
}
