using System.Diagnostics;
using SharpLens.Attribution;
using SharpLens.Diffing;
using SharpLens.Interop;
using SharpLens.IO;
using SharpLens.Loading.Llama2c;
using SharpLens.Loading.Onnx;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes;
using SharpLens.Tokenization;
using SharpLens.Training.LanguageModels;

namespace SharpLens.Fuzz;

/// <summary>
/// Runs one case: writes its files into a fresh folder (in/), runs the library call or the CLI on them with out/ as
/// the only place outputs may go, then checks what is left: no temporaries or partial outputs, the input folder
/// unchanged, no marker file, and — for a refusal — a message that names the file (and the field when known) with no
/// stack trace.
/// </summary>
public sealed class Runner(string workRoot)
{
    /// <summary>The CLI's output for a case: logits of two tokens, features, ...</summary>
    public const string OutputName = "result.npy";

    public string Materialize(FuzzCase c)
    {
        string root = Path.Combine(workRoot, c.Id);
        if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        Directory.CreateDirectory(Path.Combine(root, "in"));
        Directory.CreateDirectory(Path.Combine(root, "out"));
        foreach (var (name, data) in c.Files)
        {
            string path = Path.Combine(root, "in", name);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, data);
        }
        if (c.Target == FuzzTarget.Npy) File.Copy(Path.Combine(corpus_Fixtures, "sae", "X.npy"), Path.Combine(root, "in", "X.npy"), overwrite: true);
        return root;
    }

    string corpus_Fixtures => _fixtures ??= Seeds.FindFixtures();
    string? _fixtures;

    static string In(string root, string name) => Path.Combine(root, "in", name);

    /// <summary>The library call a case exercises, as SharpLens's own callers make it.</summary>
    public void RunLibrary(FuzzCase c, string root)
    {
        string inFolder = Path.Combine(root, "in");
        switch (c.Target)
        {
            case FuzzTarget.ModelFolder:
            case FuzzTarget.Tokenizer:
            {
                using var model = HookedTransformer.FromPretrained(inFolder);
                if (c.Target == FuzzTarget.Tokenizer)
                {
                    var tokenizer = model.Tokenizer;
                    var ids = tokenizer.Encode("hello world, the tell-tale aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
                    tokenizer.Decode(ids);
                }
                break;
            }
            case FuzzTarget.ModelFile:
            {
                using var model = HookedTransformer.FromPretrained(In(root, c.MainFile));
                break;
            }
            case FuzzTarget.EncoderFolder:
            {
                using var encoder = HookedEncoder.FromPretrained(inFolder);
                break;
            }
            case FuzzTarget.Llama2c:
            {
                using var model = Llama2cConversion.Load(In(root, "model.bin"));
                if (c.Files.ContainsKey("tokenizer.bin")) model.Tokenizer.Decode(model.Tokenizer.Encode("hello wörld \u00ff\u4e16"));
                break;
            }
            case FuzzTarget.Sae:
            {
                using var sae = SaeFiles.Load(In(root, "sae"));
                break;
            }
            case FuzzTarget.Npy:
            {
                using var x = NumpyFiles.LoadNpy(In(root, "x.npy"));
                break;
            }
            case FuzzTarget.Npz:
            {
                foreach (var t in NumpyFiles.LoadNpz(In(root, "params.npz")).Values) t.Dispose();
                using var sae = SaeFiles.Load(In(root, "params.npz"));
                break;
            }
            case FuzzTarget.WordPiece:
            {
                var tokenizer = BertWordPieceTokenizer.FromVocabFile(In(root, "vocab.txt"));
                tokenizer.Encode("the cats sat on a mat.");
                break;
            }
            case FuzzTarget.Onnx:
            {
                var file = OnnxModelFile.Open(In(root, "model.onnx"));
                foreach (var name in file.Initializers.Keys) file.Read(name).Dispose();
                break;
            }
            case FuzzTarget.Transcoders:
            {
                // As `sharplens graph` uses a set: loaded, fitted to its model, then every layer encoded and decoded.
                using var scope = TorchSharp.torch.NewDisposeScope();
                using var set = TranscoderFiles.Load(In(root, "tc"));
                using var model = HookedTransformer.FromPretrained(Path.Combine(corpus_Fixtures, "gpt2-tiny-tied"), processing: WeightProcessingOptions.None);
                _ = new ReplacementModel(model, set);
                var x = TorchSharp.torch.randn(set.NLayers, 3, set.DModel); // [n_layers, pos, d_model]
                var acts = TorchSharp.torch.stack(Enumerable.Range(0, set.NLayers).Select(l => set.Encode(l, x[l]))); // [n_layers, pos, d_tc]
                set.Decode(acts, x);
                break;
            }
            case FuzzTarget.CrossCoder:
            {
                // As `sharplens diff encode` does: loaded, then (for an input of its shape) encoded and decoded.
                using var scope = TorchSharp.torch.NewDisposeScope();
                using var cc = CrossCoderFiles.Load(In(root, "cc"));
                var x = NumpyFiles.LoadNpy(In(root, "cc/X.npy"));
                if (x.dim() == 3 && x.shape[1] == cc.NModels && x.shape[2] == cc.DIn) cc.Decode(cc.Encode(x.to(TorchSharp.torch.ScalarType.Float32)));
                break;
            }
            case FuzzTarget.GraphJson:
            {
                string path = In(root, "graph.json");
                GraphJson.Parse(File.ReadAllText(path), path);
                break;
            }
            case FuzzTarget.Checkpoint:
            {
                // As lm-eval opens a run's checkpoint (manifest checked first) and its finished folder.
                LanguageModelFolder.Open(In(root, "run.checkpoints/step-000002")).Model.Dispose();
                LanguageModelFolder.Open(In(root, "run")).Model.Dispose();
                break;
            }
            case FuzzTarget.HubCache:
            {
                var options = new Loading.Hub.HubOptions { CacheFolder = Path.Combine(inFolder, "hub"), Offline = true, Endpoint = "http://127.0.0.1:9" };
                string folder = Loading.Hub.ModelResolver.ResolveFolder(Seeds.HubRepo, options);
                using var model = HookedTransformer.FromPretrained(folder);
                break;
            }
        }
    }

    /// <summary>The BERT (vocab_size 101) whose folder a WordPiece case's vocab.txt joins for the CLI.</summary>
    public const string CliBertFixture = "zoo/bert-tiny-f32";

    /// <summary>The prompt tokenizer cases give the CLI: 29 tokens with the seed vocabulary.</summary>
    public const string CliPrompt = "hello aaaaaaaaaaaaaaaaaaaaaaaaa!";

    /// <summary>The CLI command line for a case, or null when no command reads this format on its own.</summary>
    public static string[]? CliArguments(FuzzCase c, string root)
    {
        string output = Path.Combine(root, "out", OutputName);
        return c.Target switch
        {
            FuzzTarget.ModelFolder => ["logits", "--model", Path.Combine(root, "in"), "--tokens", "1 2", "--out", output],
            FuzzTarget.ModelFile => ["logits", "--model", In(root, c.MainFile), "--tokens", "1 2", "--out", output],
            FuzzTarget.EncoderFolder => ["logits", "--model", Path.Combine(root, "in"), "--tokens", "1 2", "--out", output],
            // Within the fixture's n_ctx = 32 tokens, and still 25 a's for a backtracking Split regex to choke on.
            FuzzTarget.Tokenizer => ["logits", "--model", Path.Combine(root, "in"), "--prompt", CliPrompt, "--out", output],
            FuzzTarget.Llama2c => c.Files.ContainsKey("tokenizer.bin")
                ? ["logits", "--model", In(root, "model.bin"), "--prompt", "hello wörld", "--out", output]
                : ["logits", "--model", In(root, "model.bin"), "--tokens", "1 2", "--out", output],
            FuzzTarget.Sae => ["sae", "encode", "--sae", In(root, "sae"), "--input", In(root, "X.npy"), "--out", output, "--reconstruction", Path.Combine(root, "out", "recon.npy")],
            FuzzTarget.Npy => ["sae", "encode", "--sae", Path.Combine(Seeds.FindFixtures(), "sae", "standard"), "--input", In(root, "x.npy"), "--out", output],
            FuzzTarget.Npz => ["sae", "encode", "--sae", In(root, "params.npz"), "--input", Path.Combine(Seeds.FindFixtures(), "sae", "X.npy"), "--out", output],
            FuzzTarget.Transcoders => ["graph", "--model", Path.Combine(Seeds.FindFixtures(), "gpt2-tiny-tied"), "--transcoders", In(root, "tc"), "--tokens", "0 5 9",
                "--out", Path.Combine(root, "out", "graph"), "--batch-size", "32"],
            FuzzTarget.CrossCoder => ["diff", "encode", "--crosscoder", In(root, "cc"), "--input", In(root, "cc/X.npy"), "--out", output, "--reconstruction", Path.Combine(root, "out", "recon.npy")],
            FuzzTarget.HubCache => ["logits", "--model", Seeds.HubRepo, "--tokens", "1 2", "--out", output],
            // The case's vocab.txt beside a BERT's config.json and weights (see RunCli): logits tokenizes the prompt with it.
            FuzzTarget.WordPiece => ["logits", "--model", Path.Combine(root, "in"), "--prompt", "the cats sat on a mat.", "--out", output],
            _ => null,
        };
    }

    /// <summary>Runs the library call in this process and classifies the result.</summary>
    public CaseResult RunInProcess(FuzzCase c, TimeSpan limit)
    {
        string root = Materialize(c);
        var before = Listing(Path.Combine(root, "in"));
        var clock = Stopwatch.StartNew();
        Exception? error = null;
        var worker = new Thread(() =>
        {
            try { RunLibrary(c, root); }
            catch (Exception e) { error = e; }
        }) { IsBackground = true };
        worker.Start();
        if (!worker.Join(limit))
            return new CaseResult(c.Index, c.Format, c.Class, "library", Outcome.Hang, $"still running after {limit.TotalSeconds:0} s", clock.Elapsed.TotalSeconds);
        double seconds = clock.Elapsed.TotalSeconds;
        var outcome = Classify(c, root, error, before, out string detail);
        if (outcome is Outcome.Accepted or Outcome.Refused) TryDelete(root);
        return new CaseResult(c.Index, c.Format, c.Class, "library", outcome, detail, seconds);
    }

    Outcome Classify(FuzzCase c, string root, Exception? error, IReadOnlyList<string> before, out string detail)
    {
        if (File.Exists(Path.Combine(root, Corpus.Marker)) || File.Exists(Path.Combine(Environment.CurrentDirectory, Corpus.Marker)))
        { detail = "the marker file exists"; return Outcome.CodeExecuted; }
        var left = Leftovers(root, before, accepted: error is null);
        if (left is not null) { detail = left; return Outcome.Leftover; }
        if (error is null) { detail = ""; return Outcome.Accepted; }
        if (error is OutOfMemoryException || error.Message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase) || error.Message.Contains("DefaultCPUAllocator", StringComparison.Ordinal))
        { detail = $"{error.GetType().Name}: {Short(error.Message)}"; return Outcome.OutOfMemory; }
        var report = ErrorReport.From(error, writeCrashReport: false);
        detail = $"{error.GetType().Name}: {Short(report.Message)}";
        if (report.Kind == ErrorKind.Internal) { detail += " @ " + FirstFrame(error); return Outcome.Crash; }
        return Names(c, root, report.Message) ? Outcome.Refused : Outcome.RefusedUnnamed;
    }

    /// <summary>Whether a refusal names the case's file (by path or file name) and, when known, the field.</summary>
    public static bool Names(FuzzCase c, string root, string message)
    {
        string main = Path.Combine(root, "in", c.MainFile);
        bool file = message.Contains(main, StringComparison.Ordinal) || message.Contains(Path.GetFileName(c.MainFile), StringComparison.Ordinal)
            || message.Contains(Path.Combine(root, "in"), StringComparison.Ordinal) || (c.Target == FuzzTarget.HubCache && message.Contains(Seeds.HubRepo));
        bool field = c.Mention is null || message.Contains(c.Mention, StringComparison.OrdinalIgnoreCase)
            || message.Contains(c.Mention.Replace('_', ' '), StringComparison.OrdinalIgnoreCase);
        return file && field;
    }

    /// <summary>A description of anything a run left that it should not have, or null.</summary>
    public static string? Leftovers(string root, IReadOnlyList<string> inputBefore, bool accepted)
    {
        var inputAfter = Listing(Path.Combine(root, "in"));
        var added = inputAfter.Except(inputBefore).ToList();
        if (added.Count > 0) return "new files in the input folder: " + string.Join(", ", added.Take(3));
        var outputs = Directory.EnumerateFileSystemEntries(Path.Combine(root, "out"), "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        var temporaries = outputs.Where(n => n!.Contains(".tmp", StringComparison.Ordinal)).ToList();
        if (temporaries.Count > 0) return "temporaries left: " + string.Join(", ", temporaries.Take(3));
        if (!accepted && outputs.Count > 0) return "outputs left after a refusal: " + string.Join(", ", outputs.Take(3));
        return null;
    }

    public static List<string> Listing(string folder) =>
        [.. Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(folder, p)).Order(StringComparer.Ordinal)];

    public static void TryDelete(string root)
    {
        try { Directory.Delete(root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static string Short(string message) => message.Length > 300 ? message[..300] + "…" : message;

    static string FirstFrame(Exception e) =>
        (e.StackTrace ?? "").Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith("at SharpLens", StringComparison.Ordinal)) ?? "";

    /// <summary>How many times the CPU-time limit a CLI case may take in wall-clock time before it counts as a hang anyway.</summary>
    public const int WallFactor = 6;

    /// <summary>Runs the CLI as a child process under <c>ulimit -v</c> and a CPU-time limit, and classifies the result.</summary>
    public CaseResult RunCli(FuzzCase c, string cliDll, TimeSpan limit, long addressSpaceKiB)
    {
        string root = Materialize(c);
        var args = CliArguments(c, root);
        if (args is null) { TryDelete(root); return new CaseResult(c.Index, c.Format, c.Class, "cli", Outcome.Accepted, "no CLI route", 0); }
        // No command reads a bare vocab.txt: the CLI reads one as a BERT folder's tokenizer, so the BERT fixture joins it.
        if (c.Target == FuzzTarget.WordPiece)
            foreach (string name in new[] { "config.json", "model.safetensors" })
                File.Copy(Path.Combine(corpus_Fixtures, CliBertFixture, name), Path.Combine(root, "in", name));
        var before = Listing(Path.Combine(root, "in"));
        string quoted = string.Join(' ', args.Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        var start = new ProcessStartInfo("bash", ["-c", $"ulimit -v {addressSpaceKiB}; exec dotnet '{cliDll}' {quoted}"])
        {
            RedirectStandardError = true, RedirectStandardOutput = true, WorkingDirectory = root,
        };
        start.Environment["HF_HOME"] = Path.Combine(root, "in");
        start.Environment["HF_HUB_OFFLINE"] = "1";
        start.Environment["HF_ENDPOINT"] = "http://127.0.0.1:9";
        start.Environment["SHARPLENS_CRASH_DIR"] = Path.Combine(root, "crash");
        start.Environment["SHARPLENS_CACHE"] = Path.Combine(root, "cache");
        start.Environment["DOTNET_gcServer"] = "0";
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        // A hang is more than `limit` of the child's CPU time (or WallFactor × limit of wall time): on a shared machine at
        // load 30 a healthy CLI start alone takes 10 s of wall time, and the wall clock would call that a hang.
        var cpu = TimeSpan.Zero;
        while (!process.WaitForExit(100))
        {
            try { cpu = process.TotalProcessorTime; }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception) { continue; } // it just exited
            if (cpu <= limit && clock.Elapsed <= limit * WallFactor) continue;
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            return new CaseResult(c.Index, c.Format, c.Class, "cli", Outcome.Hang,
                $"killed after {cpu.TotalSeconds:0.0} s of CPU time, {clock.Elapsed.TotalSeconds:0} s of wall time", clock.Elapsed.TotalSeconds);
        }
        process.WaitForExit();
        double seconds = clock.Elapsed.TotalSeconds;
        string err = stderr.Result, outText = stdout.Result;
        int code = process.ExitCode;
        Outcome outcome;
        string detail = $"exit {code}: {Short(err.Trim().Split('\n').FirstOrDefault() ?? "")}";
        if (File.Exists(Path.Combine(root, Corpus.Marker))) outcome = Outcome.CodeExecuted;
        else if (err.Contains("OutOfMemory", StringComparison.Ordinal) || err.Contains("bad_alloc", StringComparison.Ordinal) || err.Contains("can't allocate memory", StringComparison.Ordinal)
                 || err.Contains("Failed to create CoreCLR", StringComparison.Ordinal)) outcome = Outcome.OutOfMemory;
        else if (code > 128 || code < 0) outcome = Outcome.Signal;
        else if (Leftovers(root, before, accepted: code == 0) is { } left) { outcome = Outcome.Leftover; detail = left; }
        else if (err.Contains("\n   at ", StringComparison.Ordinal) || err.Contains("Unhandled exception", StringComparison.Ordinal) || code == 1) outcome = Outcome.Crash;
        else if (code == 0) outcome = Outcome.Accepted;
        else if (code == 2) outcome = Names(c, root, err) && err.Trim().Split('\n').Length == 1 ? Outcome.Refused : Outcome.RefusedUnnamed;
        else outcome = Outcome.Crash;
        _ = outText;
        if (outcome is Outcome.Accepted or Outcome.Refused) TryDelete(root);
        return new CaseResult(c.Index, c.Format, c.Class, "cli", outcome, detail, seconds);
    }
}
