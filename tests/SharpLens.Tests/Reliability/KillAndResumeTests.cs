using System.Diagnostics;
using SharpLens.Fuzz;
using SharpLens.Training;

namespace SharpLens.Tests.Reliability;

/// <summary>
/// Every trainer that writes checkpoints survives SIGKILL: the SAE trainer, the crosscoder trainer, the transcoder
/// (CLT) trainer and the grokking
/// trainer (Trainer with TrainingCheckpoint folders; the language-model trainer's own test is in LanguageModelTests).
/// A run (tests/SharpLens.Fuzz's TrainingRig) is killed in a child process once two checkpoints exist; the newest
/// checkpoint's largest file is then cut in half, as a full disk or a bad copy would leave it. Resuming must refuse that
/// checkpoint by naming the file, fall back to the one before, and end with the weights of an uninterrupted run, bit for bit.
/// </summary>
public sealed class KillAndResumeTests : IDisposable
{
    readonly string _root = Path.Combine(Path.GetTempPath(), $"sharplens-kill-{Guid.NewGuid():N}");
    public void Dispose() { if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true); }

    [Theory]
    [InlineData("sae")]
    [InlineData("crosscoder")]
    [InlineData("transcoder")]
    [InlineData("grokking")]
    public void A_SIGKILLed_run_skips_its_damaged_checkpoint_and_resumes_to_bit_identical_weights(string trainer)
    {
        // The uninterrupted run, in this process (TrainingRig puts torch on one thread, as the child does).
        var straightLog = new StringWriter();
        Assert.Equal(0, TrainingRig.Run([trainer, "--folder", Path.Combine(_root, "straight")], straightLog));
        string straight = Weights(straightLog.ToString());

        // The same run in a child process, killed once its checkpoints at steps 5 and 10 exist.
        string folder = Path.Combine(_root, "killed"), checkpoints = Path.Combine(folder, "checkpoints");
        using (var process = Rig(trainer, folder, "--delay-ms", "40"))
        {
            var clock = Stopwatch.StartNew();
            while (Steps(checkpoints).Count(s => s >= 5) < 2 && !process.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(10);
            if (process.HasExited) Assert.Fail("the run ended before it could be killed: " + process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd());
            process.Kill(); // SIGKILL on Linux
            process.WaitForExit();
        }
        var steps = Steps(checkpoints);
        Assert.InRange(steps.Count, 2, TrainingRig.Steps / TrainingRig.Every - 1);
        int newest = steps[^1], previous = steps[^2];

        // Damage the newest checkpoint: its largest file loses its second half.
        string damaged = Directory.EnumerateFiles(FolderOf(checkpoints, newest)).Where(f => Path.GetFileName(f) != CheckpointManifest.FileName)
            .OrderByDescending(f => new FileInfo(f).Length).First();
        using (var stream = new FileStream(damaged, FileMode.Open)) stream.SetLength(stream.Length / 2);

        using var resumed = Rig(trainer, folder, "--resume");
        string output = resumed.StandardOutput.ReadToEnd();
        resumed.WaitForExit();
        Assert.True(resumed.ExitCode == 0, output + resumed.StandardError.ReadToEnd());
        Assert.Contains($"Checkpoint at step {newest} refused: {damaged}", output);
        Assert.Contains("truncated", output);
        Assert.Contains($"Resumed from the checkpoint at step {previous}.", output);
        Assert.Equal(straight, Weights(output));
    }

    [Theory]
    [InlineData("sae")]
    [InlineData("transcoder")]
    public void A_half_written_checkpoint_a_killed_run_left_is_removed_when_training_resumes(string trainer)
    {
        // A run killed while writing step 10 leaves its hidden temporary folder (AtomicFile's .step-10.tmp-GUID).
        string folder = Path.Combine(_root, "leftover"), checkpoints = Path.Combine(folder, "checkpoints");
        string leftover = Path.Combine(checkpoints, ".step-10.tmp-0123456789abcdef0123456789abcdef");
        Directory.CreateDirectory(leftover);
        File.WriteAllText(Path.Combine(leftover, "trainer_state.safetensors"), "half of a file");
        string unrelated = Path.Combine(checkpoints, "notes.tmp-kept"); // not a checkpoint temporary: left alone
        File.WriteAllText(unrelated, "mine");

        Assert.Equal(0, TrainingRig.Run([trainer, "--folder", folder, "--resume"], new StringWriter()));
        Assert.False(Directory.Exists(leftover), "the killed run's temporary checkpoint folder is still there");
        Assert.True(File.Exists(unrelated));
        Assert.DoesNotContain(Directory.EnumerateDirectories(checkpoints), SharpLens.IO.AtomicFile.IsTemporary);
        Assert.Equal(TrainingRig.Steps / TrainingRig.Every, Steps(checkpoints).Count);
    }

    [Fact]
    public void A_checkpoint_whose_file_was_altered_is_refused_by_name_and_the_previous_one_is_used()
    {
        string root = Path.Combine(_root, "manifest");
        foreach (int step in new[] { 5, 10 })
        {
            string folder = Path.Combine(root, $"step-{step}");
            Directory.CreateDirectory(folder);
            File.WriteAllText(Path.Combine(folder, "weights.bin"), $"weights at {step}");
            CheckpointManifest.Write(folder);
        }
        CheckpointManifest.Verify(Path.Combine(root, "step-10"));
        // Same length, one byte changed: only the hash can tell.
        string altered = Path.Combine(root, "step-10", "weights.bin");
        File.WriteAllText(altered, "weights at 1X");
        var e = Assert.Throws<SharpLens.Loading.CheckpointException>(() => CheckpointManifest.Verify(Path.Combine(root, "step-10")));
        Assert.Equal(altered, e.FilePath);
        Assert.Contains("SHA-256", e.Message);

        var log = new List<string>();
        var chosen = CheckpointManifest.Latest(CheckpointManifest.StepFolders(root), c => c.Step, c => c.Folder, log.Add);
        Assert.Equal(5, chosen!.Step);
        Assert.Equal([$"Checkpoint at step 10 refused: {e.Message} Falling back to the checkpoint at step 5."], log);
    }

    static List<int> Steps(string checkpoints) =>
        [.. CheckpointManifest.StepFolders(checkpoints).Select(c => c.Step)];

    static string FolderOf(string checkpoints, int step) => CheckpointManifest.StepFolders(checkpoints).Single(c => c.Step == step).Folder;

    static string Weights(string output) =>
        output.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("WEIGHTS ", StringComparison.Ordinal))?["WEIGHTS ".Length..]
        ?? throw new Xunit.Sdk.XunitException("the run printed no WEIGHTS line: " + output);

    static Process Rig(string trainer, string folder, params string[] more)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SharpLens.Fuzz.dll"));
        foreach (string arg in new[] { "train", trainer, "--folder", folder }.Concat(more)) start.ArgumentList.Add(arg);
        start.Environment["OMP_NUM_THREADS"] = "1";
        return Process.Start(start)!;
    }
}
