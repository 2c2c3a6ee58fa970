using System.CommandLine;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Cli;

public class HeadsCommandTests
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");

    [Fact]
    public void Heads_writes_the_detector_scores_in_the_documented_order()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-heads-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string npy = Path.Combine(folder, "scores.npy");
            int code = HeadsCommand.Create().Parse(["--model", Fixture, "--seq-len", "7", "--batch", "5", "--seed", "3", "--out", npy]).Invoke();
            Assert.Equal(0, code);

            // Independent run: same model, same generated tokens, library call.
            using var model = HookedTransformer.FromPretrained(Fixture);
            var tokens = HeadDetectors.RepeatedRandomTokens(model.Config, 7, 5, new Generator(3));
            var expected = HeadDetectors.ScoreHeads(model, tokens);
            var written = NumpyFiles.LoadNpy(npy);
            Assert.Equal(ScalarType.Float32, written.dtype);
            Assert.Equal(new long[] { 3, 2, 4 }, written.shape);
            var kinds = new[] { expected.PreviousToken, expected.DuplicateToken, expected.Induction };
            for (int k = 0; k < 3; k++)
                for (int l = 0; l < 2; l++)
                    for (int h = 0; h < 4; h++) Assert.Equal(kinds[k][l, h], written[k, l, h].item<float>(), 5);
            Assert.Equal(["previous_token", "duplicate_token", "induction"], HeadsCommand.ScoreOrder);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Heads_help_explains_the_scores_and_the_file_layout()
    {
        var output = new StringWriter();
        var root = new RootCommand { HeadsCommand.Create() }; // --help lives on the root, as in Program.cs
        root.Parse(["heads", "--help"]).Invoke(new InvocationConfiguration { Output = output });
        string help = output.ToString();
        foreach (var phrase in new[] { "previous-token", "induction", "--seq-len", "--out", "[3, n_layers, n_heads]", "--model" })
            Assert.Contains(phrase, help);
    }

    [Fact]
    public void Heads_refuses_sequences_longer_than_the_context()
    {
        var error = new StringWriter();
        var original = Console.Error;
        Console.SetError(error);
        try
        {
            int code = HeadsCommand.Create().Parse(["--model", Fixture, "--seq-len", "40"]).Invoke();
            Assert.Equal(2, code);
        }
        finally { Console.SetError(original); }
        Assert.Contains("at most 15", error.ToString());
    }
}
