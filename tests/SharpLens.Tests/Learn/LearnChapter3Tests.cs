using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>
/// Chapter 3 (toy superposition, SAEs): the solutions pass (the trained SAE recovers the toy features, mean best
/// cosine ≥ 0.9), the stubs are not started or wait for the exercises they call, and each exercise's typical wrong
/// answer fails with its tailored message. The solution is checked once per class (training the SAE is the slow part).
/// </summary>
[Collection("learn")]
public sealed class LearnChapter3Tests : IClassFixture<LearnChapter3Tests.SolutionReport>
{
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");
    readonly SolutionReport _solution;

    public LearnChapter3Tests(SolutionReport solution) => _solution = solution;

    public sealed class SolutionReport
    {
        public CheckReport Report { get; }
        public string Page { get; }

        public SolutionReport()
        {
            Page = LearnPages.Reset(Path.Combine(Dir, "chapter3.cs"));
            Report = Check(Solution());
        }
    }

    [Fact]
    public void Chapter3_check_writes_a_self_contained_page_of_the_learners_plots()
    {
        // The dimensionalities, each true feature's best cosine, and the cosine heatmap.
        string html = LearnPages.AssertSelfContained(_solution.Page, 3, charts: 3);
        Assert.Contains("best cosine", html);
    }

    static CheckReport Check(string source, params string[] exercises)
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        var report = ChapterCompiler.Run(source, Path.Combine(Dir, "chapter3.cs"), exercises);
        Assert.NotNull(report);
        return report;
    }

    static string Solution() => Chapters.Render(3, ChapterVariant.Solution, Chapters.Header(null, "0.1.0"));

    [Fact]
    public void Chapter3_solutions_pass_every_exercise_and_the_sae_recovers_the_features()
    {
        Assert.Equal(Chapter3.ExerciseNames, _solution.Report.Results.Select(r => r.Name));
        foreach (var r in _solution.Report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
    }

    [Fact]
    public void Chapter3_stubs_are_not_started_or_wait_for_the_exercises_they_call()
    {
        var stub = Check(Chapters.Render(3, ChapterVariant.Stub, Chapters.Header(null, "0.1.0")));
        foreach (var r in stub.Results)
            Assert.True(r.Name == "TrainSae" ? r.Status is ExerciseStatus.NotStarted or ExerciseStatus.Blocked : r.Status == ExerciseStatus.NotStarted, $"{r.Name}: {r.Status} {r.Message}");
    }

    public static TheoryData<string, string, string, string> Chapter3Mutants => new()
    {
        { "ToyForward", "return (hidden.MatMul(W) + b).relu();", "return hidden.MatMul(W) + b;", "Apply the ReLU" },
        { "ToyForward", "return (hidden.MatMul(W) + b).relu();", "return hidden.MatMul(W).relu();", "left out the bias" },
        { "ImportanceLoss", "return (importance * (x - xHat).pow(2)).mean();", "return (x - xHat).pow(2).mean();", "by its importance" },
        { "ImportanceLoss", "return (importance * (x - xHat).pow(2)).mean();", "return (importance * (x - xHat).pow(2)).sum();", "constant factor" },
        { "Dimensionality", "var overlaps = (W / norms).t().MatMul(W);", "var overlaps = W.t().MatMul(W);", "unit vector" },
        { "SaeEncode", "return ((x - b_dec).MatMul(W_enc) + b_enc).relu();", "return (x.MatMul(W_enc) + b_enc).relu();", "Subtract b_dec" },
        { "SaeEncode", "return ((x - b_dec).MatMul(W_enc) + b_enc).relu();", "return (x - b_dec).MatMul(W_enc) + b_enc;", "Apply the ReLU" },
        { "SaeLoss", "var sparsity = (f * W_dec.norm(1)).sum(-1).mean();", "var sparsity = f.sum(-1).mean();", "decoder row's norm" },
        { "SaeLoss", "var reconstruction = (xHat - x).pow(2).sum(-1).mean();", "var reconstruction = (xHat - x).pow(2).mean();", "averaged over both" },
        { "TrainSae", "step < 1500;", "step < 20;", "it needs 0.9" },
    };

    [Theory]
    [MemberData(nameof(Chapter3Mutants))]
    public void Chapter3_mutants_fail_with_their_tailored_message(string exercise, string find, string replace, string message)
    {
        string solution = Solution();
        Assert.True(solution.Split(find).Length == 2, $"the solution should contain '{find}' exactly once");
        var result = Check(solution.Replace(find, replace), exercise)[exercise];
        Assert.True(result.Status == ExerciseStatus.Failed, $"{exercise} should fail but is {result.Status}: {result.Message}");
        Assert.Contains(message, result.Message);
    }
}
