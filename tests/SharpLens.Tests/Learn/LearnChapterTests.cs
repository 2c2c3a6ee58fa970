using SharpLens.Cli.Learn;
using SharpLens.Learn;

namespace SharpLens.Tests.Learn;

/// <summary>
/// Every chapter's shipped solutions pass their checks; its blank stubs fail as "not started" (or wait for the
/// exercise they call); and for every exercise a typical wrong answer (a mutant of the solution) fails with its
/// tailored message. Each variant is the real chapter file, compiled in-process as `sharplens learn check` does.
/// </summary>
[Collection("learn")] // the checker's report and output are process-wide: one chapter check at a time
public sealed class LearnChapterTests
{
    static readonly string Dir = Path.Combine(Path.GetTempPath(), "sharplens-learn-tests");

    static CheckReport Check(string source, string name = "chapter1.cs")
    {
        Checker.RecordProgress = false;
        Checker.InProcess = true; // the variants here never make libtorch abort (the child-process route is tested below)
        Checker.Output = TextWriter.Null;
        var report = ChapterCompiler.Run(source, Path.Combine(Dir, name), []);
        Assert.NotNull(report);
        return report;
    }

    static string Solution(int chapter) => Chapters.Render(chapter, ChapterVariant.Solution, Chapters.Header(null, "0.1.0"));
    static string Stub(int chapter) => Chapters.Render(chapter, ChapterVariant.Stub, Chapters.Header(null, "0.1.0"));

    [Fact]
    public void Chapter1_solutions_pass_every_exercise()
    {
        string page = LearnPages.Reset(Path.Combine(Dir, "chapter1.cs"));
        var report = Check(Solution(1));
        Assert.Equal(Chapter1.ExerciseNames, report.Results.Select(r => r.Name));
        foreach (var r in report.Results) Assert.True(r.Status == ExerciseStatus.Passed, $"{r.Name}: {r.Message}");
        LearnPages.AssertSelfContained(page, 1, charts: 2); // the attention pattern, the logits on SharpLens's
    }

    [Fact]
    public void Chapter1_stubs_are_not_started_or_wait_for_the_exercise_they_call()
    {
        var stub = Stub(1);
        Assert.DoesNotContain("//> solution", stub);
        Assert.Equal(Chapter1.ExerciseNames.Length, stub.Split("throw new NotImplementedException();").Length - 1);
        var report = Check(stub);
        Assert.Equal(0, report.Passed);
        foreach (var name in new[] { "Embed", "PosEmbed", "LayerNorm", "ApplyCausalMask", "Mlp", "Unembed", "TopK", "TopP", "GenerateGreedy", "AttentionWithCache" })
        {
            Assert.Equal(ExerciseStatus.NotStarted, report[name].Status);
            Assert.Contains("not started", report[name].Message);
        }
        Assert.Equal(ExerciseStatus.Blocked, report["AttentionPattern"].Status);
        Assert.Contains("waits for ApplyCausalMask", report["AttentionPattern"].Message);
        Assert.Contains("waits for LayerNorm, Attention, Mlp", report["Block"].Message);
        Assert.Equal(ExerciseStatus.Blocked, report["Model"].Status);
    }

    /// <summary>Typical wrong answers: (exercise, text of the solution, its replacement, a phrase of the message it must get).</summary>
    public static TheoryData<string, string, string, string> Chapter1Mutants => new()
    {
        { "Embed", "return W_E[tokens]; // [batch, pos, d_model]", "return W_E[tokens] * Math.Sqrt(W_E.shape[1]);", "does not scale its embeddings" },
        { "PosEmbed", "return W_pos[..(int)pos].expand(batch, pos, W_pos.shape[1]);", "return W_pos[..(int)pos];", "must have a batch dimension" },
        { "LayerNorm", "(centred.pow(2).mean([-1], keepdim: true) + eps).sqrt()", "centred.pow(2).mean([-1], keepdim: true).sqrt() + eps", "epsilon inside the square root" },
        { "LayerNorm", "(centred.pow(2).mean([-1], keepdim: true) + eps).sqrt()", "(x.var(-1, keepdim: true) + eps).sqrt()", "biased variance" },
        { "ApplyCausalMask", ".triu(1); // [query_pos, key_pos]", ".triu(0); // [query_pos, key_pos]", "may attend to itself" },
        { "ApplyCausalMask", "return scores.masked_fill(future, double.NegativeInfinity);", "return scores * future.logical_not() + future * double.NegativeInfinity;", "0 × −∞ = NaN" },
        { "AttentionPattern", "/ Math.Sqrt(w.d_head);   // [batch, head, query_pos, key_pos]", "/ w.d_head;", "Is your scale 1/√d_head?" },
        { "AttentionPattern", "return ApplyCausalMask(scores).softmax(-1);", "return ApplyCausalMask(scores.softmax(-1));", "Mask before the softmax" },
        { "AttentionPattern", "return ApplyCausalMask(scores).softmax(-1);", "return ApplyCausalMask(scores).softmax(-2);", "Softmax over the keys" },
        { "Attention", "return einsum(\"bqhd,hdm->bqm\", z, w.W_O) + w.b_O;                     // [batch, pos, d_model]", "return einsum(\"bqhd,hdm->bqm\", z, w.W_O);", "You left out b_O" },
        { "Mlp", "var post = 0.5 * pre * (1 + (Math.Sqrt(2 / Math.PI) * (pre + 0.044715 * pre.pow(3))).tanh());", "var post = torch.nn.functional.gelu(pre);", "tanh approximation of GELU" },
        { "Mlp", "var post = 0.5 * pre * (1 + (Math.Sqrt(2 / Math.PI) * (pre + 0.044715 * pre.pow(3))).tanh());", "var post = pre.relu();", "not ReLU" },
        { "Block", "return mid + Mlp(LayerNorm(mid, w.ln2.w", "return mid + Mlp(LayerNorm(resid, w.ln2.w", "ln2 of resid_mid" },
        { "Unembed", "return x.MatMul(W_U) + b_U;", "return x.MatMul(W_U);", "You left out b_U" },
        { "Model", "return Unembed(LayerNorm(resid, w.ln_final.w, w.ln_final.b, w.ln_final.eps), w.W_U, w.b_U);", "return Unembed(resid, w.W_U, w.b_U);", "Apply ln_final" },
        { "TopK", "return logits.masked_fill(logits < kth, double.NegativeInfinity);", "return logits.masked_fill(logits <= kth, double.NegativeInfinity);", "You kept k − 1 tokens" },
        { "TopP", "var drop = (probs.cumsum(-1) - probs) >= p;", "var drop = probs.cumsum(-1) >= p;", "Keep the token that takes the total past p" },
        { "GenerateGreedy", "var next = model(tokens)[.., -1].argmax(-1, keepdim: true);", "var next = model(tokens)[.., 0].argmax(-1, keepdim: true);", "logits at the last position" },
        { "AttentionWithCache", ".triu(past + 1);", ".triu(1);", "sits at position past + i" },
    };

    [Theory]
    [MemberData(nameof(Chapter1Mutants))]
    public void Chapter1_mutants_fail_with_their_tailored_message(string exercise, string find, string replace, string message)
    {
        string solution = Solution(1);
        Assert.True(solution.Split(find).Length == 2, $"the solution should contain '{find}' exactly once");
        var report = Check(solution.Replace(find, replace));
        var result = report[exercise];
        Assert.True(result.Status == ExerciseStatus.Failed, $"{exercise} should fail but is {result.Status}: {result.Message}");
        Assert.Contains(message, result.Message);
        // Only the mutated exercise and those that call it (at most 4: the mask feeds the pattern, attention, block, model) fail.
        Assert.True(report.Passed >= Chapter1.ExerciseNames.Length - 5, $"{report.Passed} pass:\n" + string.Join("\n", report.Results.Select(Checker.Format)));
    }

    [Fact]
    public void A_file_that_does_not_compile_is_reported_with_its_lines_not_a_stack_trace()
    {
        string broken = Solution(1).Replace("return x.MatMul(W_U) + b_U;", "return x.MatMul(W_U) + bias;");
        var e = Assert.Throws<ChapterCompileException>(() => ChapterCompiler.Run(broken, Path.Combine(Dir, "chapter1.cs"), []));
        Assert.Contains("chapter1.cs(", e.Message);
        Assert.Contains("CS0103", e.Message); // the name 'bias' does not exist
        Assert.DoesNotContain("   at ", e.Message);
    }

    [Fact]
    public void An_exception_in_the_learners_code_names_its_line()
    {
        string throwing = Solution(1).Replace("return x.MatMul(W_U) + b_U;", "throw new InvalidOperationException(\"not like this\");");
        var report = Check(throwing);
        var unembed = report["Unembed"];
        Assert.Equal(ExerciseStatus.Failed, unembed.Status);
        Assert.Contains("threw InvalidOperationException (at chapter1.cs line ", unembed.Message);
        Assert.Contains("not like this", unembed.Message);
        Assert.DoesNotContain("   at ", unembed.Message);
    }

    /// <summary>
    /// The chapters multiply with SharpLens's checked MatMul, so the same shape mistake is an exception, checked in this
    /// process: the learner reads both shapes and the line, and the process (here: the test host) lives on.
    /// </summary>
    [Fact]
    public void A_shape_mistake_in_a_chapter_is_reported_with_both_shapes_and_the_line_not_an_abort()
    {
        foreach (int chapter in new[] { 1, 3 })
            Assert.DoesNotContain(Chapters.Template(chapter).Split('\n'), line => !line.TrimStart().StartsWith("//", StringComparison.Ordinal) && line.Contains(".matmul(", StringComparison.Ordinal));
        var report = Check(Solution(1).Replace("return x.MatMul(W_U) + b_U;", "return x.MatMul(W_U.T) + b_U;"));
        var unembed = report["Unembed"];
        Assert.Equal(ExerciseStatus.Failed, unembed.Status);
        Assert.Contains("the shapes do not fit (at chapter1.cs line ", unembed.Message);
        Assert.Contains("matmul: cannot multiply [", unembed.Message);
        Assert.DoesNotContain("   at ", unembed.Message);
        Assert.Equal(ExerciseStatus.Passed, report["TopK"].Status);
        var mlp = Check(Solution(1).Replace("return post.MatMul(w.W_out) + w.b_out;", "return post.MatMul(w.W_in) + w.b_out;"))["Mlp"];
        Assert.Contains("the shapes do not fit", mlp.Message);
    }

    /// <summary>
    /// A shape error inside libtorch ends the process on this host (it is not an exception): `sharplens learn check`
    /// runs the checks in a child process, so the learner reads which exercise and libtorch's message, and the other
    /// exercises are still checked.
    /// </summary>
    [Fact]
    public async Task A_libtorch_abort_in_one_exercise_is_reported_and_the_others_still_checked()
    {
        string dir = Path.Combine(Dir, "abort-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        string file = Path.Combine(dir, "chapter1.cs");
        File.WriteAllText(file, Solution(1).Replace("return x.MatMul(W_U) + b_U;", "return x.matmul(W_U.T) + b_U;")); // a learner who calls TorchSharp's own matmul
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"), "learn", "check", file, "Unembed", "TopK" }) start.ArgumentList.Add(a);
        start.Environment["SHARPLENS_CACHE"] = dir; // progress goes there, not into the user's cache
        using var process = System.Diagnostics.Process.Start(start)!;
        var stderrTask = process.StandardError.ReadToEndAsync();
        string stdout = await process.StandardOutput.ReadToEndAsync();
        string stderr = await stderrTask;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 1, $"exit {process.ExitCode}\n{stdout}\n{stderr}");
        Assert.Contains("✗ Unembed: libtorch stopped the program: mat1 and mat2 shapes cannot be multiplied", stdout);
        Assert.Contains("✓ TopK", stdout);
        Assert.Contains("1 of 2 exercises pass.", stdout);
        Assert.DoesNotContain("frame #", stdout + stderr);
        Assert.True(File.Exists(Path.Combine(dir, "learn", "progress.json")));
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public void The_stub_and_solution_files_have_the_file_based_app_directives()
    {
        string header = Chapters.Header("/repo", "0.1.0");
        Assert.Contains("#:project /repo/src/SharpLens/SharpLens.csproj", header);
        Assert.Contains("#:package TorchSharp-cpu@0.107.0", header);
        Assert.StartsWith("#:package SharpLens.Cpu@0.2.0", Chapters.Header(null, "0.2.0").Split('\n')[1]);
        string dir = Path.Combine(Dir, "write-" + Guid.NewGuid().ToString("N")[..8]);
        string path = Chapters.Write(1, ChapterVariant.Stub, dir, header);
        Assert.StartsWith("#!/usr/bin/env -S dotnet run\n#:project", File.ReadAllText(path));
        var again = Assert.Throws<SharpLensArgumentException>(() => Chapters.Write(1, ChapterVariant.Stub, dir, header));
        Assert.Contains("--force", again.Message);
        Directory.Delete(dir, recursive: true);
    }
}
