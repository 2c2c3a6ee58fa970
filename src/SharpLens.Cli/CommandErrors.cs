namespace SharpLens.Cli;

/// <summary>
/// Runs a command's body and reports whatever escapes it the one way every SharpLens front end does
/// (<see cref="ErrorReport"/>): input the user can fix → one paragraph on stderr, exit 2; anything else → one line
/// and the path of a crash report, exit 1. <c>--verbose</c> or <c>SHARPLENS_DEBUG=1</c> adds the stack trace.
/// </summary>
static class CommandErrors
{
    /// <summary>Set by the root's <c>--verbose</c> option (Program.cs).</summary>
    public static bool Verbose { get; set; }

    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) { return Report(e); }
    }

    public static int Report(Exception e)
    {
        var report = ErrorReport.From(e, string.Join(' ', Environment.GetCommandLineArgs().Skip(1)));
        Console.Error.WriteLine(report.ForConsole(e, Verbose || ErrorReport.DebugRequested));
        return report.ExitCode;
    }
}
