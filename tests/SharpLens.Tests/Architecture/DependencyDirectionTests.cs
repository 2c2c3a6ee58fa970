using System.Reflection;
using System.Text.RegularExpressions;
using SharpLens.Models;

namespace SharpLens.Tests.Architecture;

/// <summary>
/// The one-way flow of ARCHITECTURE.md, enforced: load → hooked model → technique → report, with the CLI, the server and
/// the notebook extension as shells on top. The core rooms (Models, Hooks, Loading) use none of the rooms built on them,
/// and the library uses none of its shells. Checked twice: in the source (a <c>using</c> or a qualified name) and in the
/// compiled assembly (the types the core's signatures name, and the assemblies the library references).
/// </summary>
public class DependencyDirectionTests
{
    static readonly string[] CoreRooms = ["Models", "Hooks", "Loading"];

    /// <summary>What is built on the hooked model: techniques, SAEs, reports and the rest of the top of the flow.</summary>
    static readonly string[] RoomsAboveTheCore =
        ["Techniques", "Saes", "Reports", "Attribution", "Diffing", "Grokking", "Organisms", "Training", "Tracing", "Plots"];

    static readonly string[] Shells = ["SharpLens.Cli", "SharpLens.Server", "SharpLens.Interactive", "SharpLens.Explorer"];

    static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SharpLens.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("the repository root (SharpLens.slnx) above the test binaries");
    }

    static IEnumerable<string> SourceFiles(string folder) =>
        Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));

    static readonly Regex LineComment = new(@"//.*$", RegexOptions.Multiline);

    [Fact]
    public void Models_hooks_and_loading_name_no_technique_sae_or_report_code_in_their_source()
    {
        string library = Path.Combine(RepoRoot(), "src", "SharpLens");
        var rooms = string.Join("|", RoomsAboveTheCore.Concat(Shells.Select(s => s["SharpLens.".Length..])));
        var upward = new Regex($@"\bSharpLens\.({rooms})\b");
        var found = new List<string>();
        int files = 0;
        foreach (var room in CoreRooms)
            foreach (var file in SourceFiles(Path.Combine(library, room)))
            {
                files++;
                string code = LineComment.Replace(File.ReadAllText(file), ""); // a doc comment may mention a technique
                foreach (Match m in upward.Matches(code))
                    found.Add($"{Path.GetRelativePath(library, file)}: {m.Value}");
            }
        Assert.True(files > 50, $"only {files} source files found under {string.Join(", ", CoreRooms)}: the scan is looking in the wrong place");
        Assert.True(found.Count == 0, "The core rooms must not use the rooms built on them:\n" + string.Join("\n", found.Distinct()));
    }

    [Fact]
    public void The_library_uses_none_of_its_shells()
    {
        string src = Path.Combine(RepoRoot(), "src", "SharpLens");
        var shell = new Regex($@"\b({string.Join("|", Shells.Select(Regex.Escape))})\b");
        var found = SourceFiles(src)
            .SelectMany(f => shell.Matches(LineComment.Replace(File.ReadAllText(f), "")).Select(m => $"{Path.GetRelativePath(src, f)}: {m.Value}"))
            .ToList();
        Assert.True(found.Count == 0, "The library must not use the CLI, the server or the notebook extension:\n" + string.Join("\n", found));

        var references = typeof(HookedTransformer).Assembly.GetReferencedAssemblies().Select(a => a.Name).ToList();
        Assert.Contains("TorchSharp", references); // the list is the real one
        Assert.DoesNotContain(references, name => Shells.Contains(name));
    }

    [Fact]
    public void No_public_type_of_the_core_rooms_names_a_type_from_above_them()
    {
        var assembly = typeof(HookedTransformer).Assembly;
        bool InCore(Type t) => t.Namespace is { } ns && CoreRooms.Any(r => ns == $"SharpLens.{r}" || ns.StartsWith($"SharpLens.{r}.", StringComparison.Ordinal));
        bool Above(Type t)
        {
            while (t.HasElementType) t = t.GetElementType()!;
            if (t.IsGenericType && t.GetGenericArguments().Any(Above)) return true;
            return t.Namespace is { } ns && RoomsAboveTheCore.Any(r => ns == $"SharpLens.{r}" || ns.StartsWith($"SharpLens.{r}.", StringComparison.Ordinal));
        }
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        var core = assembly.GetTypes().Where(InCore).ToList();
        Assert.Contains(typeof(HookedTransformer), core);
        var found = new List<string>();
        foreach (var type in core)
        {
            var named = new List<Type>();
            if (type.BaseType is { } b) named.Add(b);
            named.AddRange(type.GetInterfaces());
            named.AddRange(type.GetFields(all).Select(f => f.FieldType));
            named.AddRange(type.GetProperties(all).Select(p => p.PropertyType));
            foreach (var method in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                if (method is MethodInfo mi) named.Add(mi.ReturnType);
                named.AddRange(method.GetParameters().Select(p => p.ParameterType));
            }
            found.AddRange(named.Where(Above).Select(t => $"{type.FullName} → {t.FullName}"));
        }
        Assert.True(found.Count == 0, "Types of Models, Hooks and Loading must not name techniques, SAEs, reports or the rest above them:\n" + string.Join("\n", found.Distinct()));
    }
}
