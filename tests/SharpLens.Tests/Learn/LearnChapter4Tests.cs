using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>
/// Chapter 4 (grokking, the Fourier view of the fast modular-addition model): the solutions pass against
/// SharpLens's FourierBasis / FourierAnalysis / ProgressMeasures on random inputs and on the trained model; the stubs are
/// not started (or wait for the exercise they call); each exercise's typical wrong answer fails with its tailored
/// message; and the check writes chapter4.html, a self-contained page of the learner's own plots.
/// </summary>
[Collection("learn")]
public sealed class LearnChapter4Tests : IClassFixture<LearnChapter4Tests.SolutionReport>
{
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");
    readonly SolutionReport _solution;

    public LearnChapter4Tests(SolutionReport solution) => _solution = solution;

    public sealed class SolutionReport
    {
        public CheckReport Report { get; }
        public string Page { get; }

        public SolutionReport()
        {
            string page = LearnPages.Reset(Path.Combine(Dir, "chapter4.cs"));
            Report = Check(Solution());
            Page = page;
        }
    }

    static CheckReport Check(string source, params string[] exercises)
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true;
        Checker.Output = TextWriter.Null;
        var report = ChapterCompiler.Run(source, Path.Combine(Dir, "chapter4.cs"), exercises);
        Assert.NotNull(report);
        return report;
    }

    static string Solution() => Chapters.Render(4, ChapterVariant.Solution, Chapters.Header(null, "0.1.0"));

    [Fact]
    public void Chapter4_solutions_pass_every_exercise()
    {
        Assert.Equal(Chapter4.ExerciseNames, _solution.Report.Results.Select(r => r.Name));
        foreach (var r in _solution.Report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
    }

    [Fact]
    public void Chapter4_check_writes_a_self_contained_page_of_the_learners_plots()
    {
        // The 2-D transform, the norms with the key frequencies marked, the restricted and the excluded loss.
        string html = LearnPages.AssertSelfContained(_solution.Page, 4, charts: 4);
        Assert.Contains("the key frequencies (1, 11, 14)", html);
    }

    [Fact]
    public void Chapter4_stubs_are_not_started_or_wait_for_the_exercise_they_call()
    {
        var stub = Chapters.Render(4, ChapterVariant.Stub, Chapters.Header(null, "0.1.0"));
        Assert.Equal(Chapter4.ExerciseNames.Length, stub.Split("throw new NotImplementedException();").Length - 1);
        var report = Check(stub);
        Assert.Equal(0, report.Passed);
        foreach (var r in report.Results)
            if (r.Name == "EmbeddingNorms")
            {
                Assert.Equal(ExerciseStatus.Blocked, r.Status);
                Assert.Contains("waits for FourierBasis", r.Message);
            }
            else Assert.True(r.Status == ExerciseStatus.NotStarted, $"{r.Name}: {r.Status} {r.Message}");
    }

    public static TheoryData<string, string, string, string> Chapter4Mutants => new()
    {
        { "FourierBasis", "double scale = Math.Sqrt(2.0 / p);", "double scale = 1;", "Scale the cos and sin rows by √(2/p)" },
        { "FourierBasis", "F[0, x] = 1 / Math.Sqrt(p);", "F[0, x] = 1;", "constant row is 1/√p, not 1" },
        { "FourierBasis", "double angle = 2 * Math.PI * k * x / p;", "double angle = (double)k * x / p;", "left out the 2π" },
        { "Fourier2D", "return F.MatMul(f).MatMul(F.t());", "return F.MatMul(f).MatMul(F);", "Multiply by Fᵀ on the right" },
        { "Fourier2D", "return F.MatMul(f).MatMul(F.t());", "return F.t().MatMul(f).MatMul(F);", "inverse transform" },
        { "EmbeddingNorms", "return torch.stack(perFrequency).sqrt();", "return torch.stack(perFrequency);", "Take the square root" },
        { "EmbeddingNorms", "perFrequency.Add(squared[2 * k - 1] + squared[2 * k]);", "perFrequency.Add(squared[2 * k - 1]);", "cos row only" },
        { "KeyFrequencies", "var squared = norms.data<double>().Select(n => n * n).ToArray();", "var squared = norms.data<double>().ToArray();", "compare squared norms" },
        { "KeyFrequencies", "double mean = squared.Skip(1).Average();", "double mean = squared.Average();", "leave the constant (entry 0) out of the mean" },
        { "RestrictedLogits", "return mean + D.MatMul(D.t().MatMul(logits - mean));", "return D.MatMul(D.t().MatMul(logits - mean));", "Add back each answer's mean" },
        { "ExcludedLogits", "return logits - D.MatMul(D.t().MatMul(logits));", "return logits - mean(logits) - D.MatMul(D.t().MatMul(logits));", "keep each answer's mean" },
    };

    [Theory]
    [MemberData(nameof(Chapter4Mutants))]
    public void Chapter4_mutants_fail_with_their_tailored_message(string exercise, string find, string replace, string message)
    {
        string solution = Solution().Replace("static Tensor SumDirections(", "static Tensor mean(Tensor l) => l.mean([0], keepdim: true);\n    static Tensor SumDirections(");
        Assert.True(solution.Split(find).Length == 2, $"the solution should contain '{find}' exactly once");
        var result = Check(solution.Replace(find, replace), exercise)[exercise];
        Assert.True(result.Status == ExerciseStatus.Failed, $"{exercise} should fail but is {result.Status}: {result.Message}");
        Assert.Contains(message, result.Message);
    }
}
