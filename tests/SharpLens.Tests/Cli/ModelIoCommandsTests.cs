using System.Text.Json;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Cli;

/// <summary>`logits`, `cache` and `generate`: the command-line face of a forward pass, checked against the library and the golden fixture.</summary>
public class ModelIoCommandsTests : IDisposable
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-io-{Guid.NewGuid():N}");

    public ModelIoCommandsTests() => Directory.CreateDirectory(_folder);
    public void Dispose() => Directory.Delete(_folder, recursive: true);

    static (long[] Tokens, float[] Logits, long[] Shape) Golden()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "golden.json")));
        var single = json.RootElement.GetProperty("single");
        return ([.. single.GetProperty("tokens")[0].EnumerateArray().Select(e => e.GetInt64())],
                [.. single.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle())],
                [.. single.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Logits_file_equals_the_independent_reference(bool noProcessing)
    {
        var (tokens, logits, shape) = Golden();
        string npy = Path.Combine(_folder, "logits.npy");
        string[] args = ["--model", Fixture, "--tokens", string.Join(",", tokens), "--out", npy, .. noProcessing ? new[] { "--no-processing" } : []];
        Assert.Equal(0, LogitsCommand.Create().Parse(args).Invoke());

        using var written = NumpyFiles.LoadNpy(npy);
        Assert.Equal(ScalarType.Float32, written.dtype);
        Assert.Equal(shape[1..], written.shape);
        using var expected = tensor(logits).reshape(shape[1..]);
        using var reference = expected.log_softmax(-1);
        using var ours = written.log_softmax(-1);
        // Processing centres the unembedding, which shifts every logit of a position equally: compare log-probs.
        Assert.True((ours - reference).abs().max().item<float>() < 1e-4f);
        if (noProcessing) Assert.True((written - expected).abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void Dtype_bfloat16_runs_the_model_in_bf16_and_writes_float32_logits_equal_to_the_library_s()
    {
        var (tokens, _, shape) = Golden();
        string npy = Path.Combine(_folder, "logits-bf16.npy");
        Assert.Equal(0, LogitsCommand.Create().Parse(["--model", Fixture, "--tokens", string.Join(",", tokens), "--out", npy, "--dtype", "bfloat16", "--no-processing"]).Invoke());

        using var written = NumpyFiles.LoadNpy(npy);
        Assert.Equal(ScalarType.Float32, written.dtype);
        Assert.Equal(shape[1..], written.shape);
        using var model = SharpLens.Models.HookedTransformer.FromPretrained(Fixture, new SharpLens.Models.ModelOptions("cpu", ScalarType.BFloat16), SharpLens.Models.WeightProcessingOptions.None);
        using var ids = tensor(tokens).unsqueeze(0);
        using var logits = model.Run(ids);
        Assert.Equal(ScalarType.BFloat16, logits.dtype);
        using var expected = logits[0].to(ScalarType.Float32);
        Assert.Equal(0f, (written - expected).abs().max().item<float>()); // the same bf16 forward, widened exactly
    }

    [Fact]
    public void An_unknown_dtype_is_refused_with_the_ones_accepted()
    {
        var (tokens, _, _) = Golden();
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(2, LogitsCommand.Create().Parse(["--model", Fixture, "--tokens", string.Join(",", tokens), "--out", Path.Combine(_folder, "x.npy"), "--dtype", "int8"]).Invoke());
        }
        finally { Console.SetError(previous); }
        Assert.Contains("float32, bfloat16 or float16", error.ToString());
    }

    [Fact]
    public void Cache_file_holds_each_named_hook_as_the_library_caches_it()
    {
        string npz = Path.Combine(_folder, "acts.npz");
        string[] hooks = ["blocks.0.attn.hook_pattern", "blocks.1.hook_resid_post", "hook_embed"];
        Assert.Equal(0, CacheCommand.Create().Parse(["--model", Fixture, "--tokens", "7 0 100 42 42 13", "--hooks", string.Join(",", hooks), "--out", npz]).Invoke());

        var arrays = NumpyFiles.LoadNpz(npz);
        using var model = HookedTransformer.FromPretrained(Fixture);
        var (logits, cache) = model.RunWithCache(tensor(new long[] { 7, 0, 100, 42, 42, 13 }).unsqueeze(0), hooks);
        using (cache)
        {
            Assert.Equal(hooks.OrderBy(h => h), arrays.Keys.OrderBy(k => k));
            foreach (var hook in hooks)
            {
                Assert.Equal(cache[hook].shape[1..], arrays[hook].shape);
                Assert.True((arrays[hook] - cache[hook][0]).abs().max().item<float>() < 1e-6f, hook);
            }
        }
        logits.Dispose();
        foreach (var a in arrays.Values) a.Dispose();
    }

    [Fact]
    public void Cache_with_a_misspelt_hook_fails_naming_it_and_writes_nothing()
    {
        string npz = Path.Combine(_folder, "acts.npz");
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try { Assert.Equal(2, CacheCommand.Create().Parse(["--model", Fixture, "--tokens", "1 2 3", "--hooks", "blocks.0.hook_resid_psot", "--out", npz]).Invoke()); }
        finally { Console.SetError(original); }
        Assert.Contains("blocks.0.hook_resid_psot", error.ToString());
        Assert.Contains("blocks.0.hook_resid_post", error.ToString()); // the closest real name is suggested
        Assert.False(File.Exists(npz));
    }

    [Fact]
    public void Generate_prints_the_greedy_continuation_the_library_produces()
    {
        var output = new StringWriter();
        var original = Console.Out;
        Console.SetOut(output);
        try { Assert.Equal(0, GenerateCommand.Create().Parse(["--model", Fixture, "--tokens", "7 0 100 42", "--max-new-tokens", "6", "--temperature", "0"]).Invoke()); }
        finally { Console.SetOut(original); }

        using var model = HookedTransformer.FromPretrained(Fixture);
        using var sequence = model.Generate(tensor(new long[] { 7, 0, 100, 42 }), 6, temperature: 0);
        var expected = sequence[0, 4..].data<long>().ToArray();
        var printed = output.ToString().Trim().Split(' ').Select(long.Parse).ToArray();
        Assert.Equal(expected, printed);
    }

    [Fact]
    public void Logits_of_the_built_in_encoder_are_its_last_hidden_state()
    {
        string npy = Path.Combine(_folder, "hidden.npy");
        Assert.Equal(0, LogitsCommand.Create().Parse(["--model", "all-MiniLM-L6-v2", "--prompt", "The weather is lovely today.", "--out", npy]).Invoke());
        using var written = NumpyFiles.LoadNpy(npy);
        using var encoder = SharpLens.Models.Encoder.PretrainedEncoders.Load("all-MiniLM-L6-v2");
        var (tokens, mask, types) = encoder.ToTokens(["The weather is lovely today."]);
        using var hidden = encoder.Encode(tokens, mask, types)[0];
        Assert.Equal(new long[] { 8, 384 }, written.shape); // [CLS] the weather is lovely today . [SEP]
        Assert.True((written - hidden).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Llama2c_file_runs_from_the_command_line_with_the_reference_logits()
    {
        string bin = Path.Combine(AppContext.BaseDirectory, "Fixtures", "llama2c", "tiny-gqa-unshared.bin");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "llama2c", "golden.json")));
        long[] tokens = [.. json.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt64())];
        long[] shape = [.. json.RootElement.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64())];
        using var golden = tensor(json.RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray()).reshape(shape);
        string npy = Path.Combine(_folder, "l2c.npy");
        Assert.Equal(0, LogitsCommand.Create().Parse(["--model", bin, "--tokens", string.Join(",", tokens), "--out", npy]).Invoke());
        using var written = NumpyFiles.LoadNpy(npy);
        Assert.True((written.log_softmax(-1) - golden.log_softmax(-1)).abs().max().item<float>() < 1e-4f);
    }

    [Fact]
    public void Unknown_model_name_suggests_the_closest_ones()
    {
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try { Assert.Equal(2, LogitsCommand.Create().Parse(["--model", "gpt3", "--tokens", "1", "--out", Path.Combine(_folder, "x.npy")]).Invoke()); }
        finally { Console.SetError(original); }
        Assert.Contains("'gpt3'", error.ToString());
        Assert.Contains("Did you mean gpt2", error.ToString());
        Assert.False(File.Exists(Path.Combine(_folder, "x.npy")));
    }

    [Fact]
    public void A_weights_file_path_loads_the_folder_it_sits_in()
    {
        var (tokens, logits, shape) = Golden();
        string bin = Path.Combine(AppContext.BaseDirectory, "Fixtures", "pickle", "gpt2-tiny-tied-bin", "pytorch_model.bin");
        string npy = Path.Combine(_folder, "bin.npy");
        Assert.Equal(0, LogitsCommand.Create().Parse(["--model", bin, "--tokens", string.Join(",", tokens), "--out", npy, "--no-processing"]).Invoke());
        using var written = NumpyFiles.LoadNpy(npy);
        using var expected = tensor(logits).reshape(shape[1..]);
        Assert.True((written - expected).abs().max().item<float>() < 1e-4f);
    }
}
