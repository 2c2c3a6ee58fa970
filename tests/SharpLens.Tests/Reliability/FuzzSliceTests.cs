using SharpLens.Fuzz;

namespace SharpLens.Tests.Reliability;

/// <summary>
/// The short, deterministic slice of the fuzz corpus (tests/SharpLens.Fuzz) that runs with every build: the first
/// structured corruptions of every format through the library, and a few through the CLI as a child process under
/// the 4 GB address-space limit. The full corpus (≥ 1,000 cases) is scripts/fuzz/run.sh.
/// </summary>
public sealed class FuzzSliceTests : IDisposable
{
    readonly string _work = Path.Combine(Path.GetTempPath(), $"sharplens-fuzz-slice-{Guid.NewGuid():N}");
    static readonly Corpus Corpus = new(new Seeds());
    public void Dispose() { if (Directory.Exists(_work)) Directory.Delete(_work, recursive: true); }

    // Cases that need hundreds of MB to build (bombs) stay in the full run.
    static bool Heavy(FuzzCase c) => c.Class is "dup-bomb" or "mark-bomb" or "zip-bomb" or "memo" or "huge-line" or "many" or "many-shards" || c.Description.Contains("million");

    [Fact]
    public void The_library_refuses_every_early_case_by_name_and_accepts_every_seed()
    {
        var runner = new Runner(_work);
        var seeds = Enumerable.Range(0, Corpus.Formats.Count).Select(Corpus.Seed);
        var cases = Enumerable.Range(0, Corpus.Formats.Count * 5).Select(Corpus.Case).Where(c => !Heavy(c));
        var bad = new List<string>();
        int run = 0;
        foreach (var c in seeds.Concat(cases))
        {
            var r = runner.RunInProcess(c, TimeSpan.FromSeconds(20));
            run++;
            bool ok = c.Class == "seed" ? r.Outcome == Outcome.Accepted : r.Outcome is Outcome.Accepted or Outcome.Refused;
            if (!ok) bad.Add($"{c.Id} ({c.Description}): {r.Outcome} {r.Detail}");
        }
        Assert.True(run >= 80, $"only {run} cases ran");
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }

    [Fact]
    public void The_CLI_refuses_hostile_files_in_one_paragraph_under_a_4_GB_address_space_limit()
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll");
        var runner = new Runner(_work);
        // One case per kind of danger: a header length near 2^64, a pickle that asks for os.system, a config of 10^15
        // parameters, a llama2.c header whose products overflow.
        var picks = new[]
        {
            Corpus.Case(Corpus.IndexOf("safetensors", 0)), Corpus.Case(Corpus.IndexOf("pytorch", 0)),
            Corpus.Case(Corpus.IndexOf("config", Corpus.StructuredCount("config") - 1)), Corpus.Case(Corpus.IndexOf("llama2c", 49)),
        };
        Assert.Equal(["header-length", "code-execution", "huge-model", "overflow"], picks.Select(c => c.Class));
        var bad = new List<string>();
        foreach (var c in picks)
        {
            var r = runner.RunCli(c, cli, TimeSpan.FromSeconds(60), 4L << 20);
            if (r.Outcome != Outcome.Refused) bad.Add($"{c.Id} ({c.Description}): {r.Outcome} {r.Detail}");
        }
        Assert.True(bad.Count == 0, string.Join("\n", bad));
    }
}
