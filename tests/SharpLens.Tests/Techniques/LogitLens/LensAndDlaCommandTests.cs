using System.CommandLine;
using System.Text.Json;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.LogitLens;

/// <summary>`sharplens lens` and `sharplens dla` run in-process on the tiny GPT-2-shaped fixture, checked against the model's own forward pass.</summary>
public class LensAndDlaCommandTests : IDisposable
{
    static readonly string Gpt2Folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-lens-{Guid.NewGuid():N}");
    static readonly long[] Ids = [5, 17, 42, 8, 99, 23, 17, 42];
    const string IdText = "5 17 42 8 99 23 17 42";

    static int Invoke(Command command, params string[] args) => new RootCommand { command }.Parse(args).Invoke();

    [Fact]
    public void Lens_command_writes_one_log_prob_row_per_layer_and_ends_with_the_models_own_output()
    {
        string npy = Path.Combine(_folder, "lens.npy");
        string html = Path.Combine(_folder, "lens.html");
        Assert.Equal(0, Invoke(LensCommand.Create(), "lens", "--model", Gpt2Folder, "--tokens", IdText, "--out", npy, "--html", html, "--target-token", "3"));

        using var written = NumpyFiles.LoadNpy(npy);
        // Independent reference: the stored weights, unprocessed, through the ordinary forward pass.
        using var model = HookedTransformer.FromPretrained(Gpt2Folder, processing: WeightProcessingOptions.None);
        Assert.Equal(ScalarType.Float32, written.dtype);
        Assert.Equal([model.Config.NLayers + 1L, Ids.Length, model.Config.DVocab], written.shape);
        using var logProbs = model.Run(tensor(Ids).unsqueeze(0))[0].log_softmax(-1); // [pos, d_vocab]
        Assert.True((written[-1] - logProbs).abs().max().item<float>() < 1e-4);
        // Every row is a distribution over the vocabulary; the earlier rows are not the final one.
        Assert.True((written.exp().sum(-1) - 1).abs().max().item<float>() < 1e-4);
        Assert.True((written[0] - logProbs).abs().max().item<float>() > 0.1);

        // The report's table: token 3's rank in each row at the last position, as counted from the written log-probs.
        string page = File.ReadAllText(html);
        Assert.Contains("<svg", page);
        for (int row = 0; row <= model.Config.NLayers; row++)
        {
            var last = written[row, -1]; // [d_vocab]
            long rank = (last > last[3]).sum().item<long>();
            Assert.Matches($"<td>{row}</td><td>[^<]*</td><td>{rank}</td>", page);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dla_command_writes_components_that_sum_to_the_logit_difference(bool perHead)
    {
        string npy = Path.Combine(_folder, perHead ? "heads.npy" : "dla.npy");
        string[] args = ["dla", "--model", Gpt2Folder, "--tokens", IdText, "--answer-token", "3", "--wrong-token", "77", "--out", npy];
        Assert.Equal(0, Invoke(DlaCommand.Create(), perHead ? [.. args, "--per-head"] : args));

        using var written = NumpyFiles.LoadNpy(npy);
        using var model = HookedTransformer.FromPretrained(Gpt2Folder, processing: WeightProcessingOptions.None);
        using var logits = model.Run(tensor(Ids).unsqueeze(0))[0, -1]; // [d_vocab]
        double logitDiff = (logits[3] - logits[77]).item<float>();
        Assert.Equal(logitDiff, written.to(ScalarType.Float64).sum().item<double>(), 1e-4);

        var names = JsonDocument.Parse(File.ReadAllText(Path.ChangeExtension(npy, ".json"))).RootElement.GetProperty("components")
            .EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(written.shape[0], names.Count);
        // Decomposed: embeddings, then attention and MLP per layer; per head: each head of each layer.
        int attentionParts = perHead ? model.Config.NHeads : 1;
        Assert.True(names.Count >= 2 + model.Config.NLayers * (attentionParts + 1), string.Join(", ", names));
        Assert.True(written.abs().max().item<float>() > 0);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
