using System.Diagnostics;
using System.Globalization;
using System.Text;
using SharpLens.Fuzz;

// sharplens-fuzz: generates the corpus and runs it.
//   dotnet SharpLens.Fuzz.dll [--cases 1200] [--mode library|cli|both] [--cli path/SharpLens.Cli.dll]
//                             [--formats a,b] [--limit-seconds 20] [--memory-kib 4194304] [--work DIR] [--report FILE.md] [--jobs 2]
//                             [--from 0] [--results FILE.tsv]
//   --worker: internal; runs library cases in-process, one index per stdin line.
//   train sae|crosscoder|grokking --folder DIR [--resume] [--delay-ms N]: the run the kill-and-resume tests SIGKILL (TrainingRig).
//   native CASE...: the native-abort tests' child (NativeProbe): each case's refused call inside a try/catch.
if (args.Length > 0 && args[0] == "train") return TrainingRig.Run(args[1..], Console.Out);
if (args.Length > 0 && args[0] == "native") return NativeProbe.Run(args[1..], Console.Out);

var options = Options.Parse(args);
string work = Path.GetFullPath(options.Get("--work") ?? Path.Combine(Path.GetTempPath(), "sharplens-fuzz"));
Directory.CreateDirectory(work);
var corpus = new Corpus(new Seeds());
var runner = new Runner(work);
TimeSpan limit = TimeSpan.FromSeconds(double.Parse(options.Get("--limit-seconds") ?? "20", CultureInfo.InvariantCulture));
long memory = long.Parse(options.Get("--memory-kib") ?? "4194304", CultureInfo.InvariantCulture);

if (options.Has("--worker"))
{
    // The library under test, in this process: the parent gave it the address-space limit and kills it on a hang.
    Environment.CurrentDirectory = work;
    string? line;
    while ((line = Console.ReadLine()) is not null)
    {
        int index = int.Parse(line, CultureInfo.InvariantCulture);
        var c = index < 0 ? corpus.Seed(-1 - index) : corpus.Case(index);
        var r = runner.RunInProcess(c, limit);
        Console.WriteLine($"RESULT\t{index}\t{r.Outcome}\t{r.Seconds.ToString("0.000", CultureInfo.InvariantCulture)}\t{r.Detail.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ')}");
        Console.Out.Flush();
        GC.Collect();
    }
    return 0;
}

int cases = int.Parse(options.Get("--cases") ?? "1200", CultureInfo.InvariantCulture);
int from = int.Parse(options.Get("--from") ?? "0", CultureInfo.InvariantCulture);
string mode = options.Get("--mode") ?? "both";
int jobs = int.Parse(options.Get("--jobs") ?? "1", CultureInfo.InvariantCulture);
string? cli = options.Get("--cli") is { } cliPath ? Path.GetFullPath(cliPath) : null; // the CLI runs in each case's folder
if (mode is "cli" or "both" && (cli is null || !File.Exists(cli)))
{
    Console.Error.WriteLine("--cli must name SharpLens.Cli.dll (build src/SharpLens.Cli first) for --mode cli or both.");
    return 2;
}

var results = new List<CaseResult>();
var indices = Enumerable.Range(0, corpus.Formats.Count).Select(f => -1 - f).Concat(Enumerable.Range(from, cases)).ToList();
if (options.Get("--formats") is { } only)
{
    var keep = only.Split(',');
    indices = [.. indices.Where(i => keep.Contains(corpus.Formats[i < 0 ? -1 - i : i % corpus.Formats.Count]))];
}
// --results FILE: one tab-separated line per case as it ends (mode, index, format, class, outcome, seconds, detail),
// so a run stopped early still leaves what it measured.
var resultsFile = options.Get("--results") is { } resultsPath ? new StreamWriter(resultsPath, append: true) { AutoFlush = true } : null;
var resultsGate = new object();
void Record(CaseResult r)
{
    if (resultsFile is null || r.Detail == "no CLI route") return;
    lock (resultsGate)
        resultsFile.WriteLine(string.Join('\t', r.Mode, r.Index.ToString(CultureInfo.InvariantCulture), r.Format, r.Class, r.Outcome,
            r.Seconds.ToString("0.0", CultureInfo.InvariantCulture), r.Detail.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ')));
}
var clock = Stopwatch.StartNew();
if (mode is "library" or "both")
{
    using var pool = new WorkerPool(work, limit, memory);
    foreach (int index in indices)
    {
        var c = index < 0 ? corpus.Seed(-1 - index) : corpus.Case(index);
        var r = pool.Run(c);
        results.Add(r);
        Record(r);
        if (r.Outcome is not (Outcome.Accepted or Outcome.Refused)) Console.WriteLine($"library {c.Id} {r.Outcome}: {c.Description} — {r.Detail}");
    }
    Console.WriteLine($"library: {indices.Count} cases in {clock.Elapsed.TotalSeconds:0} s");
}
if (mode is "cli" or "both")
{
    var cliClock = Stopwatch.StartNew();
    var cliResults = new CaseResult[indices.Count];
    Parallel.For(0, indices.Count, new ParallelOptions { MaxDegreeOfParallelism = jobs }, k =>
    {
        int index = indices[k];
        var c = index < 0 ? corpus.Seed(-1 - index) : corpus.Case(index);
        cliResults[k] = runner.RunCli(c, cli!, limit, memory);
        Record(cliResults[k]);
        if (cliResults[k].Outcome is not (Outcome.Accepted or Outcome.Refused)) Console.WriteLine($"cli {c.Id} {cliResults[k].Outcome}: {c.Description} — {cliResults[k].Detail}");
    });
    results.AddRange(cliResults.Where(r => r.Detail != "no CLI route"));
    Console.WriteLine($"cli: {cliResults.Count(r => r.Detail != "no CLI route")} cases in {cliClock.Elapsed.TotalSeconds:0} s");
}

string report = Report.Markdown(corpus, results, from, cases);
Console.WriteLine(report);
if (options.Get("--report") is { } reportPath) File.WriteAllText(reportPath, report);
var seedsRefused = results.Where(r => r.Class == "seed" && r.Outcome != Outcome.Accepted).ToList();
foreach (var s in seedsRefused) Console.WriteLine($"seed of {s.Format} not accepted ({s.Mode}): {s.Detail}");
int defects = results.Count(r => r.Class != "seed" && r.Outcome is not (Outcome.Accepted or Outcome.Refused));
return defects == 0 && seedsRefused.Count == 0 ? 0 : 1;

/// <summary>Library cases run in a worker process under the address-space limit; a hang or a death costs only that case.</summary>
sealed class WorkerPool(string work, TimeSpan limit, long memoryKiB) : IDisposable
{
    Process? _worker;
    StreamWriter? _input;
    readonly Queue<string> _lines = new();
    readonly object _gate = new();
    readonly StringBuilder _stderr = new();

    void Start()
    {
        string self = typeof(WorkerPool).Assembly.Location;
        var start = new ProcessStartInfo("bash", ["-c", $"ulimit -v {memoryKiB}; exec dotnet '{self}' --worker --work '{work}' --limit-seconds {limit.TotalSeconds.ToString(CultureInfo.InvariantCulture)}"])
        { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["HF_HUB_OFFLINE"] = "1";
        start.Environment["DOTNET_gcServer"] = "0";
        // glibc gives each new thread (one per case) its own 64 MB malloc arena; over hundreds of cases in one worker
        // those reservations alone exhaust the 4 GB address space and a healthy case dies of it. Two arenas suffice.
        start.Environment["MALLOC_ARENA_MAX"] = "2";
        _worker = Process.Start(start)!;
        _served = 0;
        _input = _worker.StandardInput;
        _worker.OutputDataReceived += (_, e) => { if (e.Data is { } d) lock (_gate) { _lines.Enqueue(d); Monitor.PulseAll(_gate); } };
        _worker.ErrorDataReceived += (_, e) => { if (e.Data is { } d) lock (_gate) _stderr.AppendLine(d); };
        _worker.BeginOutputReadLine();
        _worker.BeginErrorReadLine();
    }

    int _served;

    /// <summary>A fresh worker every this many cases, so one case's leftovers (native caches, fragmentation) cannot fail another.</summary>
    const int CasesPerWorker = 100;

    public CaseResult Run(FuzzCase c)
    {
        if (_worker is not null && _served >= CasesPerWorker) Stop();
        if (_worker is null || _worker.HasExited) Start();
        _served++;
        lock (_gate) { _lines.Clear(); _stderr.Clear(); }
        _input!.WriteLine(c.Index.ToString(CultureInfo.InvariantCulture));
        _input.Flush();
        var clock = Stopwatch.StartNew();
        var deadline = limit + TimeSpan.FromSeconds(30); // the worker enforces the limit itself; this catches a wedged process
        lock (_gate)
        {
            while (true)
            {
                while (_lines.Count > 0)
                {
                    var parts = _lines.Dequeue().Split('\t');
                    if (parts.Length >= 5 && parts[0] == "RESULT" && parts[1] == c.Index.ToString(CultureInfo.InvariantCulture))
                    {
                        var outcome = Enum.Parse<Outcome>(parts[2]);
                        if (outcome == Outcome.Hang) Stop(); // the stuck thread would keep burning CPU
                        return new CaseResult(c.Index, c.Format, c.Class, "library", outcome, parts[4], double.Parse(parts[3], CultureInfo.InvariantCulture));
                    }
                }
                if (_worker!.HasExited)
                {
                    _worker.WaitForExit();
                    string err = _stderr.ToString();
                    int code = _worker.ExitCode;
                    _worker = null;
                    var outcome = err.Contains("OutOfMemory") || err.Contains("bad_alloc") || err.Contains("can't allocate") ? Outcome.OutOfMemory
                        : err.Contains("Stack overflow") ? Outcome.Signal : Outcome.Signal;
                    return new CaseResult(c.Index, c.Format, c.Class, "library", outcome, $"worker died (exit {code}): {Tail(err)}", clock.Elapsed.TotalSeconds);
                }
                if (clock.Elapsed > deadline)
                {
                    Stop();
                    return new CaseResult(c.Index, c.Format, c.Class, "library", Outcome.Hang, "worker wedged", clock.Elapsed.TotalSeconds);
                }
                Monitor.Wait(_gate, 200);
            }
        }
    }

    static string Tail(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return string.Join(" | ", lines.Take(3));
    }

    void Stop()
    {
        try { _worker?.Kill(entireProcessTree: true); _worker?.WaitForExit(); } catch (InvalidOperationException) { }
        _worker = null;
    }

    public void Dispose()
    {
        try { _input?.Close(); } catch (IOException) { }
        Stop();
    }
}

sealed class Options(Dictionary<string, string?> values)
{
    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string?>();
        for (int i = 0; i < args.Length; i++)
            if (args[i].StartsWith("--", StringComparison.Ordinal))
                values[args[i]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
        return new Options(values);
    }

    public string? Get(string name) => values.TryGetValue(name, out var v) ? v : null;
    public bool Has(string name) => values.ContainsKey(name);
}
