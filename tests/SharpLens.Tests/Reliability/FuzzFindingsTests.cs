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
    [InlineData(13, "bpe-vocab", "merges.txt that is binary garbage: BpeOptions read it outside the guarded block (InvalidOperationException)")]
    [InlineData(15, "bpe-vocab", "merges.txt with random bytes appended: the same")]
    [InlineData(44, "safetensors", "a bit flip that makes a tensor name invalid UTF-8 (InvalidOperationException when the name was read)")]
    [InlineData(88, "sae", "the same in an SAE's weights file")]
    [InlineData(20, "shard-index", "the same in model.safetensors.index.json")]
    [InlineData(5, "tokenizer-json", "model.type Unigram: the fallback reader's message replaced the one that named the field")]
    [InlineData(12, "tokenizer-json", "merges of numbers: fell through to Hugging Face's tokenizers")]
    [InlineData(14, "tokenizer-json", "an added token with id 2^31-1 (sized tables by it)")]
    [InlineData(73, "tokenizer-json", "a duplicated key (ArgumentException from the JSON object, unnamed)")]
    [InlineData(32, "bert", "max_position_embeddings = 2^31-1: allocated a 256 GB position table before comparing shapes")]
    [InlineData(50, "config", "n_positions = 2^31-1: refused by the shape check without naming n_positions")]
    [InlineData(44, "sae", "dtype \"12\": a plain ArgumentException naming neither cfg.json nor dtype")]
    [InlineData(75, "sae", "cfg.json that is an array (InvalidOperationException)")]
    // Found when transcoder sets, crosscoders, graph.json and training checkpoints joined the corpus (session 5).
    [InlineData(2, "transcoders", "feature_input_hook not a hook of the model: the mismatch named the set's scan, not its config.yaml")]
    [InlineData(25, "transcoders", "transcoders lists /proc/self/mem: refused naming that file but not the config that listed it")]
    [InlineData(27, "transcoders", "an empty transcoders list (ArgumentOutOfRangeException)")]
    [InlineData(24, "checkpoint", "n_layers = 0 in a checkpoint's config.json: a plain ArgumentException naming no file")]
    [InlineData(26, "checkpoint", "n_layers = 2^31-1 in a checkpoint: allocated before any check (OutOfMemoryException)")]
    [InlineData(27, "checkpoint", "n_layers = 2^62 in a checkpoint: a JsonException, reported as an internal error")]
    [InlineData(60, "checkpoint", "Hugging Face tensor names in a checkpoint: a StateDictException naming no file")]
    [InlineData(66, "bert", "config.json with a key repeated by a mutation: ArgumentException from the lazily read JSON object, unnamed")]
    // Session 6: tokenizer.json files only Hugging Face's Rust tokenizers read. A Rust panic in a native call ends the
    // process (SIGABRT), so before the guard each of the first five killed `sharplens tokenize` / `logits`.
    [InlineData(0, "tokenizer-json-native", "a Split regex (a+)+$: Oniguruma's retry limit is a Rust panic (SIGABRT)")]
    [InlineData(5, "tokenizer-json-native", "a Replace normalizer's regex (a+a+)+!: the same")]
    [InlineData(7, "tokenizer-json-native", "a charsmap whose trie length is 2^31-1: a 4 GB allocation, memory exhausted (abort)")]
    [InlineData(8, "tokenizer-json-native", "a charsmap trie whose offsets point outside it: index out of bounds (panic)")]
    [InlineData(12, "tokenizer-json-native", "a template naming a special token special_tokens lacks: 'no entry found for key' (panic)")]
    [InlineData(17, "tokenizer-json-native", "Replace normalizers that double the text 20 times: memory exhausted (abort)")]
    [InlineData(20, "tokenizer-json-native", "a WordPiece model without [UNK]: the encode's TokenizerException reported as an internal error")]
    [InlineData(21, "tokenizer-json-native", "a WordLevel model without its unk token: the same")]
    // Session 6's 3,000-case library run (case 2,341 of 20 formats): null is Hugging Face's "use the default", so
    // num_key_value_heads fell back to num_attention_heads and k_proj.weight's shape was refused naming no config field.
    [InlineData(117, "config", "num_key_value_heads = null in a grouped-query Llama: the k_proj shape mismatch named no config.json field")]
    public void A_case_the_fuzz_run_found_is_refused_by_name(int k, string format, string what)
    {
        var c = Corpus.Case(Corpus.IndexOf(format, k)); // the k-th case of the format (its index before the corpus grew: 16 k + format)
        Assert.Equal(format, c.Format);
        var r = new Runner(_work).RunInProcess(c, TimeSpan.FromSeconds(20));
        Assert.True(r.Outcome == Outcome.Refused, $"{c.Id} ({what}; {c.Description}): {r.Outcome} {r.Detail}");
    }

    // Session 7's CLI run of every format (scripts/fuzz/run.sh's CLI step; cases that only the CLI's command line reaches).
    [Theory]
    [InlineData(36, "bpe-vocab", "a chunk cut from the BPE files made the prompt 33 tokens, past n_ctx = 32: refused as '--tokens: …' though --prompt was given, naming no tokenizer")]
    [InlineData(66, "bert", "config.json with a key repeated: the CLI's encoder-or-decoder sniff indexed the JSON object outside its guard (unnamed ArgumentException)")]
    public void A_case_the_CLI_fuzz_run_found_is_refused_by_name(int k, string format, string what)
    {
        var c = Corpus.Case(Corpus.IndexOf(format, k));
        Assert.Equal(format, c.Format);
        var r = new Runner(_work).RunCli(c, Path.Combine(AppContext.BaseDirectory, "SharpLens.Cli.dll"), TimeSpan.FromSeconds(60), 4L << 20);
        Assert.True(r.Outcome == Outcome.Refused, $"{c.Id} ({what}; {c.Description}): {r.Outcome} {r.Detail}");
    }

    [Fact]
    public void A_null_dimension_field_is_read_as_its_default_and_a_shape_it_contradicts_names_it_with_that_default()
    {
        // As Hugging Face's LlamaConfig reads num_key_value_heads = null: num_attention_heads (4). The stored k_proj holds 2 heads.
        var c = Corpus.Case(Corpus.IndexOf("config", 117));
        Assert.Equal("llama config.json num_key_value_heads = null", c.Description);
        string root = new Runner(_work).Materialize(c);
        var e = Assert.Throws<SharpLens.Loading.CheckpointException>(() => SharpLens.Models.HookedTransformer.FromPretrained(Path.Combine(root, "in")).Dispose());
        Assert.Contains("k_proj.weight': shape [16, 32] does not match config.json, which implies [32, 32].", e.Message);
        Assert.Contains($"{Path.Combine(root, "in", "config.json")} sets ", e.Message);
        Assert.Contains("num_attention_heads = 4", e.Message);
        Assert.Contains("num_key_value_heads = null (the default: 4)", e.Message);
    }
}
