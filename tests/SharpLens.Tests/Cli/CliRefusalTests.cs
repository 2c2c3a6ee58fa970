using System.Diagnostics;

namespace SharpLens.Tests.Cli;

/// <summary>
/// A sample of bad option values across commands, each through the CLI as a user runs it: refused with exit code 2 in
/// one paragraph that names the option to change — never the library's own parameter name with .NET's
/// "(Parameter 'x')" suffix, never a stack trace.
/// </summary>
public sealed class CliRefusalTests : IDisposable
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-refusals-{Guid.NewGuid():N}");
    public CliRefusalTests() => Directory.CreateDirectory(_folder);
    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Bad_option_values_are_refused_naming_the_option_in_one_paragraph()
    {
        string tokens = Path.Combine(_folder, "tokens.bin"); // nanoGPT's uint16 token stream
        File.WriteAllBytes(tokens, [.. Enumerable.Range(0, 2000).SelectMany(i => BitConverter.GetBytes((ushort)(1 + i * 7 % 90)))]);
        var cases = new (string Option, string[] Args)[]
        {
            // The library's maxNewTokens / batch / P / d_transcoder / k, each set by the option named.
            ("--max-new-tokens", ["generate", "--model", Fixture, "--tokens", "1 2", "--max-new-tokens", "-1"]),
            ("--batch", ["heads", "--model", Fixture, "--batch", "0"]),
            ("--p", ["grokking", "--p", "4", "--out", Path.Combine(_folder, "grokking")]),
            ("--expansion", ["transcoders", "train", "--model", Fixture, "--token-file", tokens, "--expansion", "0", "--tokens", "100", "--out", Path.Combine(_folder, "tc")]),
            ("--k", ["sae", "train", "--model", Fixture, "--token-file", tokens, "--hook", "blocks.0.hook_resid_pre", "--architecture", "topk", "--k", "0",
                "--tokens", "100", "--out", Path.Combine(_folder, "sae")]),
        };
        foreach (var (option, args) in cases)
        {
            var (code, stderr) = Cli(args);
            string what = $"{string.Join(' ', args.Take(2))} {option}: {stderr}";
            Assert.True(code == 2, what);
            Assert.StartsWith("error: ", stderr);
            Assert.Matches(System.Text.RegularExpressions.Regex.Escape(option) + "[ :]", stderr);
            Assert.DoesNotContain("(Parameter '", stderr);
            Assert.DoesNotContain("   at ", stderr);
            Assert.DoesNotContain('\n', stderr.Trim());
        }
        Assert.False(Directory.Exists(Path.Combine(_folder, "tc")) || Directory.Exists(Path.Combine(_folder, "sae")), "a refused run left output behind");
    }

    static (int Code, string Stderr) Cli(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        start.Environment["OMP_NUM_THREADS"] = "1";
        start.Environment.Remove("SHARPLENS_DEBUG");
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stderr.Result);
    }
}
