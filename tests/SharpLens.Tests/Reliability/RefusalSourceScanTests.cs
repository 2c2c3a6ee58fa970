using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace SharpLens.Tests.Reliability;

/// <summary>
/// A refusal a user can meet must name what is wrong. .NET's own exceptions are allowed in the sources only where
/// they do: every <c>new ArgumentException(…)</c> passes the parameter name (its second argument), every
/// <c>new ArgumentOutOfRangeException(…)</c> a name and a message; <c>InvalidOperationException</c> and
/// <c>NotSupportedException</c>, which name nothing and which the CLI reports as internal errors, are not thrown at
/// all — a misuse is a <see cref="SharpLensArgumentException"/> (or another <see cref="SharpLensException"/>), a
/// broken invariant a <see cref="SharpLensInternalException"/>. The scan parses every C# file under src/ (Roslyn's
/// syntax tree, so strings and comments cannot fool it) and lists each site that breaks the rule.
/// </summary>
public class RefusalSourceScanTests
{
    static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SharpLens.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("the repository root (SharpLens.slnx) above the test binaries");
    }

    static IEnumerable<string> SourceFiles(string root) =>
        Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                     && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                     // The learner's chapter files are templates (embedded resources), not SharpLens's code.
                     && !f.Contains($"Learn{Path.DirectorySeparatorChar}Chapters{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    /// <summary>The rule's verdict on one <c>new T(…)</c>: null when it names what it should.</summary>
    internal static string? Problem(string type, IReadOnlyList<ArgumentSyntax> args)
    {
        static bool IsNull(ArgumentSyntax a) => a.Expression is LiteralExpressionSyntax { RawKind: (int)SyntaxKind.NullLiteralExpression };
        return type switch
        {
            "ArgumentException" when args.Count < 2 || IsNull(args[1]) => "an ArgumentException without a parameter name (pass it second, or throw SharpLensArgumentException)",
            "ArgumentOutOfRangeException" when args.Count < 2 || IsNull(args[0]) => "an ArgumentOutOfRangeException without a parameter name and a message saying the valid range",
            "InvalidOperationException" or "NotSupportedException" => $"a {type}, which names nothing and reads as an internal error (throw SharpLensArgumentException for a misuse, SharpLensInternalException for a broken invariant)",
            _ => null,
        };
    }

    internal static List<string> Scan(string path, string text)
    {
        var problems = new List<string>();
        var tree = CSharpSyntaxTree.ParseText(text, new CSharpParseOptions(LanguageVersion.Latest), path);
        foreach (var creation in tree.GetRoot().DescendantNodes().OfType<ObjectCreationExpressionSyntax>())
        {
            string type = creation.Type switch
            {
                QualifiedNameSyntax q => q.Right.Identifier.Text,
                SimpleNameSyntax s => s.Identifier.Text,
                _ => creation.Type.ToString(),
            };
            var args = creation.ArgumentList?.Arguments.ToList() ?? [];
            if (Problem(type, args) is { } problem)
                problems.Add($"{path}:{creation.GetLocation().GetLineSpan().StartLinePosition.Line + 1}: {problem}");
        }
        return problems;
    }

    [Fact]
    public void Every_dotnet_exception_SharpLens_throws_names_its_argument()
    {
        string root = RepoRoot();
        var files = SourceFiles(root).ToList();
        Assert.True(files.Count > 300, $"only {files.Count} source files found under {root}/src");
        var problems = files.SelectMany(f => Scan(Path.GetRelativePath(root, f), File.ReadAllText(f))).ToList();
        Assert.True(problems.Count == 0, $"{problems.Count} refusals that name nothing:\n" + string.Join("\n", problems));
    }

    [Fact]
    public void The_scan_sees_each_kind_of_unnamed_refusal_and_passes_named_ones()
    {
        const string code = """
            class C
            {
                void M(int x)
                {
                    throw new ArgumentException("bad");                                // 5
                    throw new System.ArgumentException("bad", null);                   // 6
                    throw new ArgumentOutOfRangeException(nameof(x));                  // 7
                    throw new InvalidOperationException("state");                      // 8
                    throw new System.NotSupportedException();                          // 9
                    throw new ArgumentException("x must be positive.", nameof(x));
                    throw new ArgumentOutOfRangeException(nameof(x), x, "x must be in [0, 3).");
                    throw new SharpLensArgumentException("x", "x must be positive.");
                    // throw new InvalidOperationException("in a comment");
                    string s = "new InvalidOperationException(\"in a string\")";
                }
            }
            """;
        var lines = Scan("c.cs", code).Select(p => int.Parse(p.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal([5, 6, 7, 8, 9], lines);
    }
}
