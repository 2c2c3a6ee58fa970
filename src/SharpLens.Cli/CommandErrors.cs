using System.CommandLine;

namespace SharpLens.Cli;

/// <summary>
/// Runs a command's body and reports whatever escapes it the one way every SharpLens front end does
/// (<see cref="ErrorReport"/>): input the user can fix → one paragraph on stderr, exit 2; anything else → one line
/// and the path of a crash report, exit 1. <c>--verbose</c> or <c>SHARPLENS_DEBUG=1</c> adds the stack trace.
/// A refused argument the library names by its own name (<c>maxNewTokens</c>, <c>BatchSize</c>, <c>d_transcoder</c>)
/// is told by the command's option that sets it (<c>--max-new-tokens</c>, ...), so the user knows what to change.
/// </summary>
static class CommandErrors
{
    /// <summary>Set by the root's <c>--verbose</c> option (Program.cs).</summary>
    public static bool Verbose { get; set; }

    /// <summary>Library names that differ from the option that sets them, beyond case, '-' and '_' (normalised, see <see cref="Normalised"/>).</summary>
    static readonly Dictionary<string, string[]> Aliases = new(StringComparer.Ordinal)
    {
        ["learningrate"] = ["lr"], ["microbatches"] = ["gradaccum"], ["warmupsteps"] = ["warmup"], ["evaluateevery"] = ["evalevery"],
        ["nlayers"] = ["layers"], ["nheads"] = ["heads"], ["dvocab"] = ["vocabsize"], ["nctx"] = ["context", "contextsize"],
        ["contextsize"] = ["context"], ["topk"] = ["top"], ["dsae"] = ["dsae", "expansion"], ["dtranscoder"] = ["dtranscoder", "expansion"],
        ["trainbatchsize"] = ["batchsize"], ["l1coefficient"] = ["l1"], ["halflength"] = ["seqlen"], ["tanhscale"] = ["tanhc"],
    };

    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) { return Report(e); }
    }

    /// <summary>Runs a command's body; a refused argument is told by <paramref name="parse"/>'s command's option for it.</summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        try { return body(); }
        catch (Exception e) { return Report(e, parse); }
    }

    public static int Report(Exception e, ParseResult? parse = null)
    {
        var report = ErrorReport.From(e, string.Join(' ', Environment.GetCommandLineArgs().Skip(1)));
        if (report.Kind == ErrorKind.Input && report.FilePath is null && parse is not null && OptionFor(report.Field, parse) is { } option
            && !report.Message.Contains(option, StringComparison.Ordinal))
            report = report with { Message = $"{option}: {report.Message}" };
        Console.Error.WriteLine(report.ForConsole(e, Verbose || ErrorReport.DebugRequested));
        return report.ExitCode;
    }

    /// <summary>
    /// The option of the parsed command that sets the argument <paramref name="field"/>, if one does: of those that
    /// could (its own name, then <see cref="Aliases"/>), the first the user gave, else the first.
    /// </summary>
    internal static string? OptionFor(string? field, ParseResult parse)
    {
        if (string.IsNullOrWhiteSpace(field)) return null;
        string name = Normalised(field);
        var options = parse.CommandResult.Command.Options.Where(o => o.Name.StartsWith("--", StringComparison.Ordinal)).ToList();
        var candidates = new[] { name }.Concat(Aliases.GetValueOrDefault(name) ?? [])
            .SelectMany(n => options.Where(o => Normalised(o.Name) == n))
            // A library's "tokens" is a tensor of ids: --tokens IDS sets it, a --tokens COUNT (how much to train on) does not.
            .Where(o => name != "tokens" || o.ValueType == typeof(string))
            .Distinct().ToList();
        return (candidates.FirstOrDefault(o => parse.GetResult(o) is { Implicit: false }) ?? candidates.FirstOrDefault())?.Name;
    }

    /// <summary>Lower case, without '-', '_', '.' or spaces: <c>--max-new-tokens</c>, <c>maxNewTokens</c> and <c>max_new_tokens</c> agree.</summary>
    static string Normalised(string name) => new([.. name.Where(char.IsLetterOrDigit).Select(char.ToLowerInvariant)]);
}
