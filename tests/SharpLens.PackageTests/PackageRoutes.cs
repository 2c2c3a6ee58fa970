using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace SharpLens.PackageTests;

/// <summary>
/// Packs SharpLens and SharpLens.Cpu once into a local feed, in a fresh temporary folder, with a
/// version no cache can already hold. Everything the routes restore comes from that feed or, as a read-only
/// fallback, the machine's NuGet cache (TorchSharp, libtorch, the SDK's packs): nothing is fetched from a network.
/// </summary>
public sealed class PackedFeed : IDisposable
{
    public string Repo { get; }
    public string Work { get; }
    public string Feed { get; }
    public string Version { get; }
    /// <summary>Shared by the routes, so the induction organism is trained once (by whichever route runs first).</summary>
    public string OrganismCache { get; }
    public string MachineCache { get; }
    public TimeSpan PackTime { get; }

    public PackedFeed()
    {
        Repo = FindRepo();
        Work = Path.Combine(Path.GetTempPath(), $"sharplens-package-tests-{Guid.NewGuid():N}"[..40]);
        Feed = Path.Combine(Work, "feed");
        OrganismCache = Path.Combine(Work, "organisms");
        Directory.CreateDirectory(Feed);
        Version = $"0.1.0-test{DateTime.UtcNow:yyyyMMddHHmmss}";
        MachineCache = System.Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } p ? p
            : Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var clock = Stopwatch.StartNew();
        foreach (var project in new[] { "src/SharpLens", "src/SharpLens.Cpu", "src/SharpLens.Interactive" })
        {
            var r = Tool.Run("dotnet", ["pack", project, "-c", "Release", "-o", Feed, $"-p:Version={Version}", "--disable-build-servers"], Repo, TimeSpan.FromMinutes(15));
            if (r.ExitCode != 0) throw new InvalidOperationException($"dotnet pack {project} failed:\n{r.Output}");
        }
        PackTime = clock.Elapsed;
    }

    /// <summary>A fresh folder with a nuget.config: the local feed only, a throwaway global cache, the machine cache as fallback.</summary>
    public string NewApp(string name)
    {
        string dir = Path.Combine(Work, name);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(Work, "nuget-cache-" + name)}" /></config>
              <packageSources><clear /><add key="local" value="{Feed}" /></packageSources>
              <fallbackPackageFolders><clear /><add key="machine" value="{MachineCache}" /></fallbackPackageFolders>
            </configuration>
            """);
        return dir;
    }

    public Dictionary<string, string?> ChildEnvironment() => new()
    {
        ["NUGET_PACKAGES"] = null, // the nuget.config's globalPackagesFolder, not the machine's
        ["SHARPLENS_CACHE"] = OrganismCache,
        ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        ["DOTNET_NOLOGO"] = "1",
        ["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1",
    };

    static string FindRepo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "SharpLens.slnx"))) return dir.FullName;
        throw new InvalidOperationException("SharpLens.slnx not found above " + AppContext.BaseDirectory);
    }

    public void Dispose()
    {
        try { Directory.Delete(Work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition("packed feed")]
public sealed class PackedFeedCollection : ICollectionFixture<PackedFeed>;

[Collection("packed feed")]
public sealed class PackageRoutes(PackedFeed feed, ITestOutputHelper output)
{
    static string AppsDir => Path.Combine(AppContext.BaseDirectory, "Apps");

    [Fact]
    public void Console_app_referencing_SharpLens_Cpu_runs_an_organism_and_MiniLM_with_host_natives_only()
    {
        string dir = feed.NewApp("console");
        File.WriteAllText(Path.Combine(dir, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable></PropertyGroup>
              <ItemGroup><PackageReference Include="SharpLens.Cpu" Version="{feed.Version}" /></ItemGroup>
            </Project>
            """);
        File.Copy(Path.Combine(AppsDir, "Program.cs"), Path.Combine(dir, "Program.cs"));
        var clock = Stopwatch.StartNew();
        var build = Tool.Run("dotnet", ["build", "-c", "Release", "--disable-build-servers"], dir, TimeSpan.FromMinutes(15), feed.ChildEnvironment());
        Assert.True(build.ExitCode == 0, build.Output);
        var buildTime = clock.Elapsed;
        string bin = Path.Combine(dir, "bin", "Release", "net10.0");
        long bytes = Directory.EnumerateFiles(bin, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        clock.Restart();
        var run = Tool.Run("dotnet", [Path.Combine(bin, "app.dll")], dir, TimeSpan.FromMinutes(15), feed.ChildEnvironment());
        var runTime = clock.Elapsed;
        output.WriteLine(run.Output);
        output.WriteLine($"ROUTE console: pack {feed.PackTime.TotalSeconds:0} s, restore+build {buildTime.TotalSeconds:0.0} s, run {runTime.TotalSeconds:0.0} s, output {bytes / 1048576.0:0} MiB");
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("induction logits [1, 6, 128]", run.Output);
        var ratio = Regex.Match(run.Output, @"loss ratio ([0-9.]+)");
        Assert.True(ratio.Success && double.Parse(ratio.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 5,
            "the organism trained in the app should predict the repeated half at least 5x better than the random half:\n" + run.Output);
        Assert.Contains("embeddings [3, 384]; cos(0,1) = 0.666; cos(0,2) = 0.105", run.Output);
        Assert.True(bytes <= 500L * 1024 * 1024, $"output is {bytes / 1048576.0:0} MiB, over 500 MiB");
        Assert.False(Directory.Exists(Path.Combine(bin, "runtimes", "win-x64")), "another platform's natives were copied");
        Assert.False(Directory.Exists(Path.Combine(bin, "pretrained")), "MiniLM was copied into the output instead of read from the package");
    }

    [Fact]
    public void File_based_app_runs_with_its_defaults()
    {
        string dir = feed.NewApp("file-based");
        File.WriteAllText(Path.Combine(dir, "explore.cs"), File.ReadAllText(Path.Combine(AppsDir, "explore.cs")).Replace("VERSION", feed.Version));
        var clock = Stopwatch.StartNew();
        var run = Tool.Run("dotnet", ["run", "explore.cs"], dir, TimeSpan.FromMinutes(15), feed.ChildEnvironment());
        output.WriteLine(run.Output);
        output.WriteLine($"ROUTE file-based: dotnet run explore.cs (restore, build, run) {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.DoesNotContain("Reflection-based serialization has been disabled", run.Output);
        Assert.Contains("settings round trip: True", run.Output);
        Assert.Contains("config round trip: True", run.Output);
        Assert.Contains("pattern [1, 4, 6, 6]", run.Output);
        Assert.Contains("cos(0,1) = 0.666", run.Output);
    }
}

[Collection("packed feed")]
public sealed class NotebookRoute(PackedFeed feed, ITestOutputHelper output)
{
    /// <summary>
    /// notebooks/quickstart.ipynb executed headless by Jupyter's nbconvert on the .NET Interactive kernel, with
    /// <c>#r "nuget: SharpLens.Cpu"</c> restored from the local feed into a throwaway cache (NUGET_PACKAGES) and the
    /// machine's cache as fallback (NUGET_FALLBACK_PACKAGES). .ci/run installs Jupyter and the kernel.
    /// </summary>
    [Fact]
    public void Quickstart_notebook_executes_headless()
    {
        string dir = feed.NewApp("notebook");
        string source = File.ReadAllText(Path.Combine(feed.Repo, "notebooks", "quickstart.ipynb"));
        const string reference = "#r \\\"nuget: SharpLens.Cpu, 0.1.0\\\"";
        Assert.Contains(reference, source);
        // The test's feed and version instead of the README's registered feed and 0.1.0.
        string notebook = source.Replace(reference, $"#i \\\"nuget: {feed.Feed}\\\"\\n#r \\\"nuget: SharpLens.Cpu, {feed.Version}\\\"");
        File.WriteAllText(Path.Combine(dir, "quickstart.ipynb"), notebook);
        var env = feed.ChildEnvironment();
        env["NUGET_PACKAGES"] = Path.Combine(feed.Work, "nuget-cache-notebook");
        env["NUGET_FALLBACK_PACKAGES"] = feed.MachineCache;
        string tools = Path.Combine(System.Environment.GetFolderPath(System.Environment.SpecialFolder.UserProfile), ".dotnet", "tools");
        env["PATH"] = System.Environment.GetEnvironmentVariable("PATH") + Path.PathSeparator + tools;
        var clock = Stopwatch.StartNew();
        var run = Tool.Run("jupyter", ["nbconvert", "--to", "notebook", "--execute", "quickstart.ipynb", "--output", "executed.ipynb",
            "--ExecutePreprocessor.timeout=1200"], dir, TimeSpan.FromMinutes(25), env);
        output.WriteLine($"ROUTE notebook: nbconvert --execute {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(run.ExitCode == 0, run.Output);
        string executed = File.ReadAllText(Path.Combine(dir, "executed.ipynb"));
        Assert.DoesNotContain("\"output_type\": \"error\"", executed);
        Assert.Contains("MiniLM cos(0,1) = 0.666; cos(0,2) = 0.105", executed);
        var ratio = Regex.Match(executed, @"loss ratio ([0-9.]+)");
        Assert.True(ratio.Success && double.Parse(ratio.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 5, executed);
    }
}

/// <summary>Runs a process to completion (or kills its tree at the limit) and returns its exit code and interleaved output.</summary>
static class Tool
{
    public sealed record Result(int ExitCode, string Output);

    public static Result Run(string file, IEnumerable<string> args, string workingDirectory, TimeSpan limit, IDictionary<string, string?>? env = null)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        if (env is not null)
            foreach (var (k, v) in env)
                if (v is null) info.Environment.Remove(k); else info.Environment[k] = v;
        var text = new System.Text.StringBuilder();
        using var p = new Process { StartInfo = info };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            return new Result(124, $"{file} {string.Join(' ', args)} ran past {limit.TotalMinutes:0} min and was stopped.\n{text}");
        }
        p.WaitForExit();
        lock (text) return new Result(p.ExitCode, text.ToString());
    }
}
