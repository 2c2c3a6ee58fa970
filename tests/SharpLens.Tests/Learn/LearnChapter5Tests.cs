using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>
/// Chapter 5 (attribution graphs, on the seeded random model with random transcoders): the solutions pass against
/// SharpLens's Attributor, GraphPruning and FeatureInterventions; the stubs are not started; each exercise's typical
/// wrong answer fails with its tailored message; the check writes chapter5.html.
/// </summary>
[Collection("learn")]
public sealed class LearnChapter5Tests : IClassFixture<LearnChapter5Tests.SolutionReport>
{
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");
    readonly SolutionReport _solution;

    public LearnChapter5Tests(SolutionReport solution) => _solution = solution;

    public sealed class SolutionReport
    {
        public CheckReport Report { get; }
        public string Page { get; }

        public SolutionReport()
        {
            Page = LearnPages.Reset(Path.Combine(Dir, "chapter5.cs"));
            Report = Check(Solution());
        }
    }

    static CheckReport Check(string source, params string[] exercises)
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        var report = ChapterCompiler.Run(source, Path.Combine(Dir, "chapter5.cs"), exercises);
        Assert.NotNull(report);
        return report;
    }

    static string Solution() => Chapters.Render(5, ChapterVariant.Solution, Chapters.Header(null, "0.1.0"));

    [Fact]
    public void Chapter5_solutions_pass_every_exercise()
    {
        Assert.Equal(Chapter5.ExerciseNames, _solution.Report.Results.Select(r => r.Name));
        foreach (var r in _solution.Report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
    }

    [Fact]
    public void Chapter5_check_writes_a_self_contained_page_of_the_learners_plots()
    {
        string html = LearnPages.AssertSelfContained(_solution.Page, 5, charts: 2); // influence per feature; edges into the top logit
        Assert.Contains("as the edge predicted", html);
    }

    [Fact]
    public void Chapter5_stubs_are_not_started()
    {
        var stub = Chapters.Render(5, ChapterVariant.Stub, Chapters.Header(null, "0.1.0"));
        Assert.Equal(Chapter5.ExerciseNames.Length, stub.Split("throw new NotImplementedException();").Length - 1);
        var report = Check(stub);
        Assert.All(report.Results, r => Assert.Equal(ExerciseStatus.NotStarted, r.Status));
    }

    public static TheoryData<string, string, string, string> Chapter5Mutants => new()
    {
        { "DirectLogitEdge", "var direction = W_U[.., token] - W_U.mean([1]);", "var direction = W_U[.., token];", "Demean the unembedding over the vocabulary" },
        { "DirectLogitEdge", "return activation * decoderRow.dot(direction);", "return decoderRow.dot(direction);", "Multiply by the feature's activation" },
        { "NormalizeMatrix", "var magnitude = A.abs();", "var magnitude = A;", "Take absolute values first" },
        { "NormalizeMatrix", "magnitude.sum(1, keepdim: true)", "magnitude.sum(0, keepdim: true)", "Normalise each row" },
        { "Influence", "var influence = current.clone();", "var influence = current + w;", "Start the sum at w Â" },
        { "Influence", "while (current.any().item<bool>())", "while (false)", "Keep multiplying" },
        { "TopFeatureForLogit", "return (int)A[logit, ..nFeatures].argmax().item<long>();", "return (int)A[..nFeatures, logit].argmax().item<long>();", "you read its column" },
        { "TopFeatureForLogit", "return (int)A[logit, ..nFeatures].argmax().item<long>();", "return (int)A[logit].argmax().item<long>();", "look only at the feature nodes" },
        { "SteerFeature", "z[0, pos] += delta * decoderRow;", "z[0] += delta * decoderRow;", "at every position" },
        { "SteerFeature", "z[0, pos] += delta * decoderRow;", "z[0, pos] += decoderRow;", "Scale the decoder row by delta" },
    };

    [Theory]
    [MemberData(nameof(Chapter5Mutants))]
    public void Chapter5_mutants_fail_with_their_tailored_message(string exercise, string find, string replace, string message)
    {
        string solution = Solution();
        Assert.True(solution.Split(find).Length == 2, $"the solution should contain '{find}' exactly once");
        var result = Check(solution.Replace(find, replace), exercise)[exercise];
        Assert.True(result.Status == ExerciseStatus.Failed, $"{exercise} should fail but is {result.Status}: {result.Message}");
        Assert.Contains(message, result.Message);
    }
}
