using System.Diagnostics;

namespace SharpLens.Tests.Cli;

/// <summary>The root's <c>--max-memory</c>: a model that needs more is refused with both numbers before anything is allocated.</summary>
public sealed class MaxMemoryOptionTests : IDisposable
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-maxmem-{Guid.NewGuid():N}");
    public MaxMemoryOptionTests() => Directory.CreateDirectory(_folder);
    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void A_model_larger_than_max_memory_is_refused_with_the_numbers_and_a_bad_size_names_the_option()
    {
        string output = Path.Combine(_folder, "logits.npy");
        var (code, stderr) = Cli("logits", "--model", Fixture, "--tokens", "1 2", "--out", output, "--max-memory", "1K");
        Assert.Equal(2, code);
        Assert.Contains("config.json", stderr);
        Assert.Contains("124.1 KiB", stderr);
        Assert.Contains("more than the 1 KiB available", stderr);
        Assert.False(File.Exists(output));

        (code, stderr) = Cli("logits", "--model", Fixture, "--tokens", "1 2", "--out", output, "--max-memory", "lots");
        Assert.Equal(2, code);
        Assert.Equal("error: --max-memory 'lots' is not a size; give bytes or a number with K, M, G or T (e.g. 8G).", stderr.Trim());
    }

    static (int Code, string Stderr) Cli(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment.Remove(SharpLens.IO.SizeCheck.MaxMemoryVariable);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stderr.Result);
    }
}
