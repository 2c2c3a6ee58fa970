using System.Reflection;
using System.Runtime.Loader;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Emit;
using SharpLens.Learn;

namespace SharpLens.Cli.Learn;

/// <summary>A chapter file that does not compile: the compiler's errors, each with its line, as the learner's editor shows them.</summary>
public sealed class ChapterCompileException(string file, IReadOnlyList<string> errors)
    : SharpLensFileException(file, null, $"{Path.GetFileName(file)} does not compile ({errors.Count} error{(errors.Count == 1 ? "" : "s")}):\n  " +
        string.Join("\n  ", errors.Take(12)) + (errors.Count > 12 ? $"\n  … and {errors.Count - 12} more" : "") +
        "\nFix these and check again (dotnet run shows the same errors).")
{
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>
/// Compiles a chapter file in this process with Roslyn — what `dotnet run chapter1.cs` compiles, without a build:
/// the directives (#:, #!) are blanked, the implicit usings of a file-based app added, SharpLens and TorchSharp
/// referenced as this process has them — then runs its top-level code, which checks the exercises
/// (<see cref="Checker.LastReport"/>). The learner's assembly loads into a collectible context and is unloaded after.
/// </summary>
public static class ChapterCompiler
{
    static readonly Lazy<IReadOnlyList<MetadataReference>> References = new(() =>
    {
        var paths = ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return [.. paths.Where(p => p.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    });

    const string ImplicitUsings = "global using System;\nglobal using System.Collections.Generic;\nglobal using System.IO;\nglobal using System.Linq;\n" +
                                  "global using System.Net.Http;\nglobal using System.Threading;\nglobal using System.Threading.Tasks;\n";

    /// <summary>
    /// What the .NET Interactive C# kernel imports before a notebook's first cell (seen in Microsoft.dotnet-interactive
    /// 1.0.712001: Path, Thread and HttpClient do not compile there): a notebook is checked with these, not a project's
    /// implicit usings, so what passes here compiles in the kernel.
    /// </summary>
    const string KernelUsings = "using System; using System.Collections.Generic; using System.Linq; using System.Text; using System.Threading.Tasks;\n";

    /// <summary>Images already compiled in this process, by source and path: a source checked again (the tests check each solution several times) compiles once.</summary>
    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, (byte[] Assembly, byte[] Pdb)> Compiled = new();

    /// <summary>Compiles <paramref name="source"/> (the text of <paramref name="path"/>) to an assembly image and its PDB.</summary>
    public static (byte[] Assembly, byte[] Pdb) Compile(string source, string path)
    {
        string key = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(path) + "\n" + source)));
        if (Compiled.TryGetValue(key, out var cached)) return cached;
        var images = CompileUncached(source, path);
        if (Compiled.Count < 256) Compiled[key] = images;
        return images;
    }

    static (byte[] Assembly, byte[] Pdb) CompileUncached(string source, string path)
    {
        // Keep line numbers: a directive line becomes a comment line.
        var lines = source.Replace("\r\n", "\n").Split('\n').Select(l => l.StartsWith("#:", StringComparison.Ordinal) || l.StartsWith("#!", StringComparison.Ordinal) ? "//" + l : l);
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var tree = CSharpSyntaxTree.ParseText(string.Join('\n', lines), parse, path: Path.GetFullPath(path), encoding: System.Text.Encoding.UTF8);
        var usings = CSharpSyntaxTree.ParseText(ImplicitUsings, parse, path: "ImplicitUsings.g.cs", encoding: System.Text.Encoding.UTF8);
        var options = new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable,
            optimizationLevel: OptimizationLevel.Debug, concurrentBuild: false);
        var compilation = CSharpCompilation.Create("Chapter_" + Guid.NewGuid().ToString("N")[..8], [tree, usings], References.Value, options);
        return Emit(compilation, path);
    }

    static (byte[] Assembly, byte[] Pdb) Emit(CSharpCompilation compilation, string path)
    {
        using var pe = new MemoryStream();
        using var pdb = new MemoryStream();
        var result = compilation.Emit(pe, pdb, options: new EmitOptions(debugInformationFormat: DebugInformationFormat.PortablePdb));
        if (!result.Success)
        {
            var errors = result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d =>
            {
                var span = d.Location.GetLineSpan();
                return $"{Path.GetFileName(span.Path)}({span.StartLinePosition.Line + 1},{span.StartLinePosition.Character + 1}): error {d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
            }).ToList();
            throw new ChapterCompileException(path, errors);
        }
        return (pe.ToArray(), pdb.ToArray());
    }

    /// <summary>
    /// The C# of a chapter notebook (.ipynb): its code cells in order, as one script, the kernel's #r/#i directives
    /// blanked (this process has SharpLens already). Lines keep their cell's text; cells are separated by a blank line.
    /// </summary>
    public static string NotebookScript(string json, string path)
    {
        System.Text.Json.Nodes.JsonNode? root;
        try { root = System.Text.Json.Nodes.JsonNode.Parse(json); }
        catch (System.Text.Json.JsonException e) { throw new ChapterCompileException(path, [$"the notebook is not valid JSON: {e.Message}"]); }
        var cells = root?["cells"] as System.Text.Json.Nodes.JsonArray ?? throw new ChapterCompileException(path, ["the notebook has no cells."]);
        var code = new List<string>();
        foreach (var cell in cells)
        {
            if ((string?)cell?["cell_type"] != "code") continue;
            string text = cell!["source"] switch
            {
                System.Text.Json.Nodes.JsonArray lines => string.Concat(lines.Select(l => (string?)l)),
                var single => (string?)single ?? "",
            };
            // The kernel checks in its own process (the check cell says so); here the checker's own setting decides, so
            // `sharplens learn check chapterN.ipynb` checks in child processes, safe from a libtorch abort, as for a .cs file.
            code.Add(string.Join('\n', text.Replace("\r\n", "\n").Split('\n').Select(l =>
                l.TrimStart().StartsWith("#r ", StringComparison.Ordinal) || l.TrimStart().StartsWith("#i ", StringComparison.Ordinal) ||
                l.TrimStart().StartsWith("Checker.InProcess = true;", StringComparison.Ordinal) ? "//" + l : l)));
        }
        return string.Join("\n\n", code);
    }

    /// <summary>Compiles a notebook's code cells as one C# script (what the .NET Interactive kernel runs, cell after cell) and runs it.</summary>
    public static CheckReport? RunNotebook(string json, string path, string[] args)
    {
        string script = NotebookScript(json, path);
        var parse = new CSharpParseOptions(LanguageVersion.Latest, kind: SourceCodeKind.Script);
        var tree = CSharpSyntaxTree.ParseText(KernelUsings + script, parse,
            path: Path.GetFullPath(path), encoding: System.Text.Encoding.UTF8);
        var options = new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable,
            optimizationLevel: OptimizationLevel.Debug, concurrentBuild: false);
        var compilation = CSharpCompilation.CreateScriptCompilation("Notebook_" + Guid.NewGuid().ToString("N")[..8], tree, References.Value, options);
        var (image, pdb) = Emit(compilation, path);
        return Execute(image, pdb, path, args);
    }

    /// <summary>
    /// Compiles and runs a chapter file as `dotnet run FILE -- ARGS` would, and returns its check's report (null when the
    /// file's top-level code checked nothing, e.g. the call to Check was removed).
    /// </summary>
    public static CheckReport? Run(string source, string path, string[] args)
    {
        var (image, pdb) = Compile(source, path);
        return Execute(image, pdb, path, args);
    }

    static CheckReport? Execute(byte[] image, byte[] pdb, string path, string[] args)
    {
        var context = new AssemblyLoadContext("sharplens-learn-" + Path.GetFileName(path), isCollectible: true);
        try
        {
            var assembly = context.LoadFromStream(new MemoryStream(image), new MemoryStream(pdb));
            // A script (a notebook's cells) has no entry point but a factory: Script.<Factory>(object[] submissions) → Task<object>.
            var factory = assembly.GetTypes().FirstOrDefault(t => t.DeclaringType is null && t.Name is "Script" or "Submission#0")?.GetMethod("<Factory>", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic);
            var entry = factory ?? assembly.EntryPoint ?? throw new ChapterCompileException(path, ["the file has no top-level code: its first statements should call the chapter's Check."]);
            var before = Checker.LastReport;
            Checker.SourceFileOverride = Path.GetFullPath(path);
            try
            {
                var returned = factory is not null ? factory.Invoke(null, [new object?[2]]) : entry.Invoke(null, entry.GetParameters().Length == 0 ? null : [args]);
                if (returned is Task task)
                    try { task.GetAwaiter().GetResult(); }
                    catch (Exception e) when (e is not SharpLensException) { throw new TargetInvocationException(e); }
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                var inner = e.InnerException;
                if (inner is SharpLensException) throw inner;
                var explained = Checker.Explain("top-level code", inner, path);
                throw new ChapterRunException(path, explained.Message);
            }
            finally { Checker.SourceFileOverride = null; }
            return ReferenceEquals(Checker.LastReport, before) ? null : Checker.LastReport;
        }
        finally { context.Unload(); }
    }

    /// <summary>Reads <paramref name="path"/> and runs it (see <see cref="Run(string, string, string[])"/>).</summary>
    public static CheckReport? RunFile(string path, string[] args)
    {
        if (!File.Exists(path))
            throw new SharpLensArgumentException("FILE", $"{path} does not exist. Start a chapter with `sharplens learn start 1 --dir DIR`, then check DIR/chapter1.cs.");
        return Path.GetExtension(path).Equals(".ipynb", StringComparison.OrdinalIgnoreCase)
            ? RunNotebook(File.ReadAllText(path), path, args)
            : Run(File.ReadAllText(path), path, args);
    }
}

/// <summary>The chapter file's own top-level code threw (outside any exercise's check).</summary>
public sealed class ChapterRunException(string file, string message)
    : SharpLensFileException(file, null, $"{Path.GetFileName(file)}'s top-level code failed: {message}");
