using SharpLens.Fuzz;

namespace SharpLens.Tests.Reliability;

/// <summary>
/// Regressions for what the full fuzz run (scripts/fuzz/run.sh) found: each corpus case below once crashed, ran out
/// of memory or was refused without naming its file or field. Each must now be refused, by name, through the library.
/// </summary>
public sealed class FuzzFindingsTests : IDisposable
{
    readonly string _work = Path.Combine(Path.GetTempPath(), $"sharplens-fuzz-findings-{Guid.NewGuid():N}");
    static readonly Corpus Corpus = new(new Seeds());
    public void Dispose() { if (Directory.Exists(_work)) Directory.Delete(_work, recursive: true); }

    [Theory]
    [InlineData(214, "bpe-vocab", "merges.txt that is binary garbage: BpeOptions read it outside the guarded block (InvalidOperationException)")]
    [InlineData(246, "bpe-vocab", "merges.txt with random bytes appended: the same")]
    [InlineData(704, "safetensors", "a bit flip that makes a tensor name invalid UTF-8 (InvalidOperationException when the name was read)")]
    [InlineData(1418, "sae", "the same in an SAE's weights file")]
    [InlineData(322, "shard-index", "the same in model.safetensors.index.json")]
    [InlineData(87, "tokenizer-json", "model.type Unigram: the fallback reader's message replaced the one that named the field")]
    [InlineData(199, "tokenizer-json", "merges of numbers: fell through to Hugging Face's tokenizers")]
    [InlineData(231, "tokenizer-json", "an added token with id 2^31-1 (sized tables by it)")]
    [InlineData(1175, "tokenizer-json", "a duplicated key (ArgumentException from the JSON object, unnamed)")]
    [InlineData(521, "bert", "max_position_embeddings = 2^31-1: allocated a 256 GB position table before comparing shapes")]
    [InlineData(801, "config", "n_positions = 2^31-1: refused by the shape check without naming n_positions")]
    [InlineData(714, "sae", "dtype \"12\": a plain ArgumentException naming neither cfg.json nor dtype")]
    [InlineData(1210, "sae", "cfg.json that is an array (InvalidOperationException)")]
    public void A_case_the_fuzz_run_found_is_refused_by_name(int index, string format, string what)
    {
        var c = Corpus.Case(index);
        Assert.Equal(format, c.Format);
        var r = new Runner(_work).RunInProcess(c, TimeSpan.FromSeconds(20));
        Assert.True(r.Outcome == Outcome.Refused, $"{c.Id} ({what}; {c.Description}): {r.Outcome} {r.Detail}");
    }
}
