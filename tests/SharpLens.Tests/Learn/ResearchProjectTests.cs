using SharpLens.Cli.Learn;
using SharpLens.Interop;
using SharpLens.Projects;
using static TorchSharp.torch;

namespace SharpLens.Tests.Learn;

/// <summary>
/// `sharplens project`: a new folder, recorded runs (command, seed, version, machine, outputs and hashes), a re-run in a
/// fresh copy that compares every output (bytes, or numbers with timings skipped), and a self-contained report.
/// </summary>
public sealed class ResearchProjectTests
{
    static string NewFolder() => Path.Combine(Path.GetTempPath(), "sharplens-project-tests", Guid.NewGuid().ToString("N")[..8], "my-project");
    static readonly string[] Cli = ["dotnet", Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll")];

    [Fact]
    public void A_project_records_its_runs_reproduces_them_in_a_fresh_copy_and_writes_a_self_contained_report()
    {
        string folder = NewFolder();
        try
        {
            var manifest = ResearchProject.New(folder, "induction", seed: 7, appHeader: "#:package SharpLens.Cpu@0.1.0\n");
            Assert.Equal("my-project", manifest.Name);
            string log = File.ReadAllText(Path.Combine(folder, "log.md"));
            Assert.Contains("sharplens project run -- sharplens heads --model induction --seed 7", log); // the project's seed in the plan
            Assert.Contains("**Question:**", log);
            Assert.Contains("**Hypothesis:**", log);
            Assert.StartsWith("#:package SharpLens.Cpu@0.1.0", File.ReadAllText(Path.Combine(folder, "app.cs")));
            Assert.Throws<SharpLensArgumentException>(() => ResearchProject.New(folder));

            // An input the project keeps (not written by any run) is copied into the re-run's fresh folder.
            File.WriteAllText(Path.Combine(folder, "input.txt"), "0.9\n");
            var run = ResearchProject.Run(folder, ["sh", "-c", "printf 'layer,score,wall_seconds\\n0,0.5,'$$'\\n1,'$(cat input.txt)',3\\n' > scores.csv; echo \"seed $SHARPLENS_SEED\""], Cli);
            Assert.Equal(0, run.ExitCode);
            Assert.Equal(7, run.Seed);
            var output = Assert.Single(run.Outputs);
            Assert.Equal("scores.csv", output.Path);
            Assert.Equal(ResearchProject.Sha256(Path.Combine(folder, "scores.csv")), output.Sha256);
            Assert.Contains("seed 7", File.ReadAllText(Path.Combine(folder, run.OutputLog)));
            Assert.Contains(".NET", run.Machine);
            ResearchProject.Run(folder, ["sh", "-c", "date +%s%N > now.txt"], Cli);
            Assert.Contains("run 2", File.ReadAllText(Path.Combine(folder, "log.md")));
            string originalCsv = File.ReadAllText(Path.Combine(folder, "scores.csv"));

            var again = ResearchProject.Rerun(folder, Cli);
            // The csv's bytes differ (the process id in its timing column) but its numbers are the same.
            Assert.Contains(again, r => r.Path == "scores.csv" && r.Outcome == Reproduction.SameNumbers);
            Assert.Contains(again, r => r.Path == "now.txt" && r.Outcome == Reproduction.Differs); // a clock is not reproducible, and the re-run says so
            Assert.Equal(originalCsv, File.ReadAllText(Path.Combine(folder, "scores.csv")));       // the recorded outputs are left as they were
            Assert.True(File.Exists(Path.Combine(folder, "runs", "rerun", "scores.csv")));
            Assert.Equal(2, ResearchProject.Runs(folder).Count);                                    // a re-run is not a new recorded run
            Assert.Contains("re-run", File.ReadAllText(Path.Combine(folder, "log.md")));

            string html = File.ReadAllText(ProjectReport.Write(folder));
            Assert.Contains("<td>0.9</td>", html);                      // the table the run wrote
            Assert.Contains("sharplens project run -- sh -c", html);     // the commands that reproduce it
            Assert.Contains("SameNumbers", html);                        // the re-run's outcome
            Assert.DoesNotContain("<script", html);
            Assert.DoesNotContain("src=\"http", html);
            Assert.DoesNotContain("href=\"http", html);
        }
        finally { Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true); }
    }

    [Fact]
    public void A_real_sharplens_command_is_recorded_reproduced_identically_and_its_scores_shown_in_the_report()
    {
        string folder = NewFolder();
        try
        {
            ResearchProject.New(folder, seed: 3);
            string fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
            var run = ResearchProject.Run(folder, ["sharplens", "heads", "--model", fixture, "--seq-len", "7", "--batch", "5", "--seed", "3", "--out", "heads.npy"], Cli);
            Assert.True(run.ExitCode == 0, File.ReadAllText(Path.Combine(folder, run.OutputLog)));
            Assert.Equal("heads.npy", Assert.Single(run.Outputs).Path);
            Assert.Equal("sharplens", run.Command[0]); // recorded as the user wrote it, not as the path of this build

            var again = Assert.Single(ResearchProject.Rerun(folder, Cli));
            Assert.Equal(Reproduction.Identical, again.Outcome);

            string html = File.ReadAllText(ProjectReport.Write(folder));
            var scores = NumpyFiles.LoadNpy(Path.Combine(folder, "heads.npy"));
            Assert.Contains("[3, 2, 4]", html);
            Assert.Contains($"<td>{scores[2, 1, 0].item<float>().ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture)}</td>", html); // an induction score, as a table cell
        }
        finally { Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true); }
    }

    [Fact]
    public void Outputs_compare_by_their_numbers_with_timings_skipped()
    {
        string dir = Path.Combine(Path.GetTempPath(), "sharplens-project-tests", Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            string A(string name, string text) { string p = Path.Combine(dir, name); File.WriteAllText(p, text); return p; }
            var (same, detail) = OutputComparison.Compare(A("a.json", "{\"loss\": 0.25, \"heads\": [1, 2], \"train_seconds\": 3.1}"), A("b.json", "{\"loss\":0.25,\"heads\":[1,2],\"train_seconds\":9.7}"));
            Assert.Equal(Reproduction.SameNumbers, same);
            Assert.Contains("train_seconds", detail);
            var (differs, where) = OutputComparison.Compare(A("c.json", "{\"loss\": 0.25, \"heads\": [1, 2]}"), A("d.json", "{\"loss\": 0.25, \"heads\": [1, 3]}"));
            Assert.Equal(Reproduction.Differs, differs);
            Assert.Equal("$.heads[1]: 2 became 3", where);
            Assert.Equal(Reproduction.Differs, OutputComparison.Compare(A("e.json", "{\"from_cache\": false}"), A("f.json", "{\"from_cache\": true}")).Outcome);
            Assert.Equal(Reproduction.Differs, OutputComparison.Compare(A("g.csv", "x,y\n1,0.5\n"), A("h.csv", "x,y\n1,0.6\n")).Outcome);
            Assert.Equal(Reproduction.SameNumbers, OutputComparison.Compare(A("i.csv", "x,y\n1,0.50\n"), A("j.csv", "x,y\n1,0.5\n")).Outcome);

            string n1 = Path.Combine(dir, "a.npy"), n2 = Path.Combine(dir, "b.npy"), n3 = Path.Combine(dir, "c.npy");
            NumpyFiles.SaveNpy(n1, tensor(new float[] { 1f, 2f, 3f }));
            NumpyFiles.SaveNpy(n2, tensor(new float[] { 1f, 2f, 3.5f }));
            NumpyFiles.SaveNpy(n3, tensor(new float[] { 1f, 2f }));
            Assert.Equal(Reproduction.Differs, OutputComparison.Compare(n1, n2).Outcome);
            Assert.Contains("shape", OutputComparison.Compare(n1, n3).Detail);
            Assert.Equal(Reproduction.NotCompared, OutputComparison.Compare(A("a.html", "<p>1</p>"), A("b.html", "<p>2</p>")).Outcome);

            // A checkpoint manifest records its sibling's size and hash: when the sibling differs only in a timing, so may they.
            string one = Path.Combine(dir, "one"), two = Path.Combine(dir, "two");
            Directory.CreateDirectory(one); Directory.CreateDirectory(two);
            File.WriteAllText(Path.Combine(one, "trainer.json"), "{\"loss\": 1.5, \"elapsed_seconds\": 3.25}");
            File.WriteAllText(Path.Combine(two, "trainer.json"), "{\"loss\": 1.5, \"elapsed_seconds\": 13.5}");
            string Manifest(string folder)
            {
                string trainer = Path.Combine(folder, "trainer.json"), path = Path.Combine(folder, "manifest.json");
                File.WriteAllText(path, $"{{\"files\": {{\"trainer.json\": {{\"bytes\": {new FileInfo(trainer).Length}, \"sha256\": \"{ResearchProject.Sha256(trainer)}\"}}}}}}");
                return path;
            }
            Assert.Equal(Reproduction.SameNumbers, OutputComparison.Compare(Manifest(one), Manifest(two)).Outcome);
            File.WriteAllText(Path.Combine(two, "trainer.json"), "{\"loss\": 1.75, \"elapsed_seconds\": 13.5}"); // now a number differs
            Assert.Equal(Reproduction.Differs, OutputComparison.Compare(Manifest(one), Manifest(two)).Outcome);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void Bad_input_is_refused_with_the_argument_named()
    {
        var e = Assert.Throws<SharpLensArgumentException>(() => ResearchProject.New(NewFolder(), "no-such-template"));
        Assert.Contains("induction", e.Message);
        Assert.Contains("pos-probing", e.Message);
        var missing = Assert.Throws<SharpLensArgumentException>(() => ResearchProject.Run(Path.GetTempPath(), ["true"], Cli));
        Assert.Contains("sharplens project new", missing.Message);
        string folder = NewFolder();
        try
        {
            ResearchProject.New(folder);
            Assert.Contains("no recorded runs", Assert.Throws<SharpLensArgumentException>(() => ResearchProject.Rerun(folder, Cli)).Message);
            Assert.Contains("Could not start", Assert.Throws<SharpLensArgumentException>(() => ResearchProject.Run(folder, ["no-such-program-xyz"], Cli)).Message);
            File.WriteAllText(Path.Combine(folder, "runs.json"), "{ not json");
            Assert.Contains("runs.json", Assert.Throws<SharpLensFileException>(() => ResearchProject.Runs(folder)).Message);
        }
        finally { Directory.Delete(Path.GetDirectoryName(folder)!, recursive: true); }
    }

    [Fact]
    public void Every_template_plans_sharplens_commands_and_its_app_compiles()
    {
        var commands = new HashSet<string>(StringComparer.Ordinal) { "tour", "heads", "grokking", "pos-probe" };
        Assert.Equal(["induction", "grokking", "pos-probing"], ProjectTemplates.All.Select(t => t.Name));
        foreach (var t in ProjectTemplates.All)
        {
            foreach (var c in ProjectTemplates.CommandsFor(t, 5))
            {
                var words = c.Split(' ');
                Assert.Equal("sharplens", words[0]);
                Assert.Contains(words[1], commands);
                Assert.DoesNotContain("{seed}", c);
            }
            ChapterCompiler.Compile((t.App ?? ProjectTemplates.DefaultApp), Path.Combine(Path.GetTempPath(), $"{t.Name}-app.cs")); // throws with the errors if it does not
        }
    }
}

