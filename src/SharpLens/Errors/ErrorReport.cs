using System.Runtime.InteropServices;
using System.Text;

namespace SharpLens;

/// <summary>
/// What any front end (the CLI, a server, the explorer) tells the user about an exception, decided in one place:
/// <list type="bullet">
/// <item>input the user can fix (a <see cref="SharpLensException"/> of kind Input, or .NET's own argument and
/// missing-file errors): the message as one paragraph, exit code 2;</item>
/// <item>anything else is a SharpLens bug: one line, a full crash report written to <see cref="CrashFolder"/>, exit code 1.</item>
/// </list>
/// A server returns the record itself as its structured error (kind, message, file, field, exit code).
/// </summary>
public sealed record ErrorReport(ErrorKind Kind, int ExitCode, string Message, string ExceptionType, string? FilePath, string? Field,
    string? CrashReportPath)
{
    /// <summary>Exit code for input the user can fix.</summary>
    public const int InputExitCode = 2;
    /// <summary>Exit code for an internal error.</summary>
    public const int InternalExitCode = 1;

    /// <summary>Whether stack traces are wanted: <c>SHARPLENS_DEBUG=1</c> (the CLI's <c>--verbose</c> sets it too).</summary>
    public static bool DebugRequested => Environment.GetEnvironmentVariable("SHARPLENS_DEBUG") is "1" or "true";

    /// <summary>Who can fix <paramref name="error"/>.</summary>
    public static ErrorKind KindOf(Exception error) => Unwrap(error) switch
    {
        SharpLensException s => s.Kind,
        // .NET's own errors for a bad argument or a missing / unwritable path are the user's to fix.
        ArgumentException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException
            or PathTooLongException or DriveNotFoundException => ErrorKind.Input,
        IOException io when IsDiskFull(io) => ErrorKind.Input,
        _ => ErrorKind.Internal,
    };

    /// <summary>
    /// The report for <paramref name="error"/>; for an internal error a crash report is written first (unless
    /// <paramref name="writeCrashReport"/> is false) and its path is part of the message.
    /// </summary>
    public static ErrorReport From(Exception error, string? commandLine = null, bool writeCrashReport = true)
    {
        var e = Unwrap(error);
        var kind = KindOf(e);
        string? file = (e as SharpLensException)?.FilePath ?? (e as FileNotFoundException)?.FileName;
        string? field = (e as SharpLensException)?.Field ?? (e as ArgumentException)?.ParamName;
        if (kind == ErrorKind.Input)
            return new(kind, InputExitCode, OneParagraph(UserMessage(e)), e.GetType().Name, file, field, null);
        string? report = null;
        if (writeCrashReport)
        {
            try { report = WriteCrashReport(e, commandLine); }
            catch (Exception writeFailure) when (writeFailure is IOException or UnauthorizedAccessException) { report = null; }
        }
        string line = $"internal error ({e.GetType().Name}): {FirstLine(e.Message)}" +
                      (report is null ? "" : $" A full report is in {report}; please include it when reporting the bug.");
        return new(kind, InternalExitCode, line, e.GetType().Name, file, field, report);
    }

    /// <summary>The folder crash reports go to: <c>SHARPLENS_CRASH_DIR</c>, else <c>~/.cache/sharplens/crashes</c>.</summary>
    public static string CrashFolder
    {
        get
        {
            if (Environment.GetEnvironmentVariable("SHARPLENS_CRASH_DIR") is { Length: > 0 } set) return set;
            string cache = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg
                ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
            return Path.Combine(cache, "sharplens", "crashes");
        }
    }

    /// <summary>Writes the full exception (type, message, stack, inner exceptions) with the command line and versions; returns its path.</summary>
    public static string WriteCrashReport(Exception error, string? commandLine)
    {
        var text = new StringBuilder();
        text.AppendLine($"SharpLens crash report, {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC");
        text.AppendLine($"SharpLens {typeof(ErrorReport).Assembly.GetName().Version}, .NET {Environment.Version}, {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}");
        if (commandLine is not null) text.AppendLine($"Command: {commandLine}");
        text.AppendLine();
        text.AppendLine(error.ToString());
        string path = Path.Combine(CrashFolder, $"crash-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.txt");
        IO.AtomicFile.WriteAllText(path, text.ToString());
        return path;
    }

    /// <summary>The text a console front end prints: the message, plus the stack trace when debugging was asked for.</summary>
    public string ForConsole(Exception error, bool verbose) =>
        verbose ? $"error: {Message}{Environment.NewLine}{error}" : $"error: {Message}";

    static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        while (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
        return e;
    }

    static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is 28 /* ENOSPC */ or 112 /* ERROR_DISK_FULL */ or 39;

    /// <summary>
    /// The message without the " (Parameter 'name')" .NET appends to an <see cref="ArgumentException"/>'s: the name is
    /// a C# parameter's, which means nothing to a user (the report keeps it as <see cref="Field"/>; the CLI names its option).
    /// </summary>
    static string UserMessage(Exception e)
    {
        string message = e.Message;
        if (e is ArgumentException { ParamName: { Length: > 0 } name })
        {
            string suffix = $" (Parameter '{name}')";
            int at = message.LastIndexOf(suffix, StringComparison.Ordinal);
            if (at >= 0) message = message.Remove(at, suffix.Length);
        }
        return message;
    }

    static string OneParagraph(string message) => string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    static string FirstLine(string message)
    {
        string first = message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim() ?? "";
        return first.Length > 300 ? first[..300] + "…" : first;
    }
}
