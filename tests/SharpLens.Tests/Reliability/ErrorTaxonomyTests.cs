using System.CommandLine;
using SharpLens.Cli.Commands;
using SharpLens.IO;

namespace SharpLens.Tests.Reliability;

public class ErrorTaxonomyTests
{
    [Fact]
    public void Every_exception_class_SharpLens_defines_derives_from_SharpLensException()
    {
        var assemblies = new[] { typeof(SharpLensException).Assembly, typeof(SaeEncodeCommand).Assembly };
        var exceptions = assemblies.SelectMany(a => a.GetTypes()).Where(t => typeof(Exception).IsAssignableFrom(t)).ToList();
        Assert.True(exceptions.Count >= 20, $"only {exceptions.Count} exception classes found");
        // Control flow thrown and caught inside one class (ActivationReader's StopForward, ChatTemplate's BreakSignal) is never an error anyone sees.
        var outside = exceptions.Where(t => !typeof(SharpLensException).IsAssignableFrom(t) && t.Name is not ("StopForward" or "BreakSignal")).Select(t => t.FullName).ToList();
        Assert.Empty(outside);
    }

    [Fact]
    public void File_errors_name_their_file_and_field()
    {
        var e = new SharpLens.Loading.SafeTensorsFormatException("/m/model.safetensors", "wte", "bad");
        Assert.IsAssignableFrom<SharpLensFileException>(e);
        Assert.Equal("/m/model.safetensors", e.FilePath);
        Assert.Equal("wte", e.Field);
        var report = ErrorReport.From(e);
        Assert.Equal((ErrorKind.Input, 2, "/m/model.safetensors", "wte"), (report.Kind, report.ExitCode, report.FilePath, report.Field));
        Assert.Null(report.CrashReportPath);
    }

    [Fact]
    public void An_input_error_is_one_paragraph_with_exit_code_2()
    {
        var report = ErrorReport.From(new SharpLensArgumentException("--layer", "--layer 9 is out of range.\nThe model has 2 layers."));
        Assert.Equal(2, report.ExitCode);
        Assert.Equal("--layer 9 is out of range. The model has 2 layers.", report.Message);
        Assert.Equal("--layer", report.Field);
    }

    [Fact]
    public void A_dotnet_argument_error_is_told_without_its_parameter_suffix_which_stays_the_field()
    {
        var report = ErrorReport.From(new ArgumentException("ModularAdditionSettings.P must be odd, got 4.", "P"));
        Assert.Equal(2, report.ExitCode);
        Assert.Equal("ModularAdditionSettings.P must be odd, got 4.", report.Message);
        Assert.Equal("P", report.Field);
        report = ErrorReport.From(new ArgumentOutOfRangeException("DictSize", 0, "dict_size must be positive."));
        Assert.Equal("dict_size must be positive. Actual value was 0.", report.Message);
    }

    [Fact]
    public void An_internal_error_writes_a_crash_report_and_exits_1()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-crash-{Guid.NewGuid():N}");
        string? previous = Environment.GetEnvironmentVariable("SHARPLENS_CRASH_DIR");
        Environment.SetEnvironmentVariable("SHARPLENS_CRASH_DIR", folder);
        try
        {
            Exception thrown;
            try { throw new NullReferenceException("boom"); } catch (Exception caught) { thrown = caught; }
            var report = ErrorReport.From(thrown, "sharplens logits --model x");
            Assert.Equal((ErrorKind.Internal, 1), (report.Kind, report.ExitCode));
            Assert.NotNull(report.CrashReportPath);
            Assert.StartsWith(folder, report.CrashReportPath);
            Assert.DoesNotContain('\n', report.Message);
            Assert.Contains(report.CrashReportPath!, report.Message);
            string text = File.ReadAllText(report.CrashReportPath!);
            Assert.Contains("System.NullReferenceException: boom", text);
            Assert.Contains(nameof(An_internal_error_writes_a_crash_report_and_exits_1), text); // the stack trace is in the report
            Assert.Contains("sharplens logits --model x", text);
            Assert.DoesNotContain(Directory.GetFiles(folder), AtomicFile.IsTemporary);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SHARPLENS_CRASH_DIR", previous);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void The_CLI_prints_a_library_file_error_as_one_paragraph_without_a_stack_trace()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-taxonomy-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try
        {
            File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "gpt2", "n_layer": 1, "n_head": 1, "n_embd": 4, "n_positions": 8, "vocab_size": 10}""");
            File.WriteAllBytes(Path.Combine(folder, "model.safetensors"), [1, 2, 3]);
            int code = LogitsCommand.Create().Parse(["--model", folder, "--tokens", "1 2", "--out", Path.Combine(folder, "x.npy")]).Invoke();
            Assert.Equal(2, code);
            string text = error.ToString().Trim();
            Assert.Contains(Path.Combine(folder, "model.safetensors"), text);
            Assert.DoesNotContain("\n", text);
            Assert.DoesNotContain("   at ", text);
            Assert.False(File.Exists(Path.Combine(folder, "x.npy")));
        }
        finally { Console.SetError(original); Directory.Delete(folder, recursive: true); }
    }
}
