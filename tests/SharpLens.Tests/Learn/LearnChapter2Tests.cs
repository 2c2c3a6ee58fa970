using SharpLens.Cli.Learn;
using SharpLens.Learn;
using SharpLens.Tests.Organisms;

namespace SharpLens.Tests.Learn;

/// <summary>Chapter 2 on the tests' small induction organism (the learner's checks use the full one): solutions, stubs, mutants.</summary>
[Collection("learn")]
public sealed class LearnChapter2Tests : IClassFixture<LoadedSmallInductionOrganism>
{
    readonly LoadedSmallInductionOrganism _small;
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");

    public LearnChapter2Tests(LoadedSmallInductionOrganism small) => _small = small;

    CheckReport Check(string source, params string[] exercises)
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        Chapter2.ModelOverride = () => _small.Organism.Model;
        try
        {
            var report = ChapterCompiler.Run(source, Path.Combine(Dir, "chapter2.cs"), exercises);
            Assert.NotNull(report);
            return report;
        }
        finally { Chapter2.ModelOverride = null; }
    }

    static string Solution() => Chapters.Render(2, ChapterVariant.Solution, Chapters.Header(null, "0.1.0"));

    [Fact]
    public void Chapter2_solutions_pass_and_stubs_are_not_started()
    {
        string page = LearnPages.Reset(Path.Combine(Dir, "chapter2.cs"));
        var report = Check(Solution());
        foreach (var r in report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
        LearnPages.AssertSelfContained(page, 2, charts: 3); // previous-token, induction and ablation scores per head
        var stub = Check(Chapters.Render(2, ChapterVariant.Stub, Chapters.Header(null, "0.1.0")));
        Assert.All(stub.Results, r => Assert.Equal(ExerciseStatus.NotStarted, r.Status));
    }

    public static TheoryData<string, string, string, string> Chapter2Mutants => new()
    {
        { "PatternFromQK", "/ Math.Sqrt(q.shape[^1]);", ";", "did not scale them" },
        { "PreviousTokenScores", "cache[\"pattern\", l].diagonal(-1, 2, 3)", "cache[\"pattern\", l].diagonal(0, 2, 3)", "attention to the current token" },
        { "InductionScores", "torch.cat([torch.zeros(batch, pos, 1, dtype: ScalarType.Bool), sameAsBefore], 2)", "(tokens.unsqueeze(2) == tokens.unsqueeze(1)) & torch.ones(pos, pos, dtype: ScalarType.Bool).tril(-1)", "duplicate-token score" },
        { "LogitAttribution", "var answers = tokens[.., 1..];", "var answers = tokens[.., ..^1];", "the next one, tokens[p + 1]" },
        { "AblationScores", ".item<float>() - clean;", ".item<float>();", "Subtract the clean loss" },
    };

    [Theory]
    [MemberData(nameof(Chapter2Mutants))]
    public void Chapter2_mutants_fail_with_their_tailored_message(string exercise, string find, string replace, string message)
    {
        string solution = Solution();
        Assert.True(solution.Split(find).Length == 2, $"the solution should contain '{find}' exactly once");
        var result = Check(solution.Replace(find, replace), exercise)[exercise];
        Assert.True(result.Status == ExerciseStatus.Failed, $"{exercise} should fail but is {result.Status}: {result.Message}");
        Assert.Contains(message, result.Message);
    }
}
