using System.CommandLine;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Plots;
using SharpLens.Techniques.Patching;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Patching;

/// <summary>`sharplens patch` run in-process on a tiny GPT-2-shaped Hugging Face folder (the CLI's plumbing); the science is tested on the organism.</summary>
public class PatchCommandTests : IDisposable
{
    static readonly string Gpt2Folder = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-patch-{Guid.NewGuid():N}");
    const string Clean = "5 17 42 8 99 23 17 42", Corrupted = "5 17 42 8 99 23 61 42";

    static int Invoke(params string[] args)
    {
        var root = new RootCommand { PatchCommand.Create() };
        return root.Parse(args).Invoke();
    }

    [Theory]
    [InlineData("resid_pre", 8)]
    [InlineData("z", 4)]
    public void Patch_command_writes_the_library_sweep_as_npy_with_a_png_beside_it(string component, int columns)
    {
        string npy = Path.Combine(_folder, $"{component}.npy");
        int code = Invoke("patch", "--model", Gpt2Folder, "--clean-tokens", Clean, "--corrupted-tokens", Corrupted,
            "--answer-token", "3", "--wrong-token", "77", "--component", component, "--out", npy, "--png", "--html", Path.ChangeExtension(npy, ".html"));
        Assert.Equal(0, code);

        using var written = NumpyFiles.LoadNpy(npy);
        Assert.Equal(ScalarType.Float32, written.dtype);
        Assert.Equal([2L, columns], written.shape);
        using var model = HookedTransformer.FromPretrained(Gpt2Folder);
        using var pairs = PromptPairs.FromTokens([5, 17, 42, 8, 99, 23, 17, 42], [5, 17, 42, 8, 99, 23, 61, 42], 3, 77);
        using var expected = ActivationPatching.Sweep(model, pairs, component);
        Assert.True((written - expected.Values).abs().max().item<float>() < 1e-6);
        if (component == "resid_pre") Assert.Equal(1f, written[0, 6].item<float>(), 1e-4); // the one corrupted position carries everything at layer 0

        var png = File.ReadAllBytes(Path.ChangeExtension(npy, ".png"));
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, png[..4]);
        Assert.Empty(Directory.GetFiles(_folder, "*.tmp-*"));

        // The report is one self-contained page: the heatmap inline, positions labelled with their tokens.
        string html = File.ReadAllText(Path.ChangeExtension(npy, ".html"));
        Assert.Contains("<svg", html);
        Assert.DoesNotContain("<script", html);
        Assert.DoesNotContain("src=", html);
        Assert.Contains(expected.CleanMetric.ToString("0.000"), html);
        if (component == "resid_pre") Assert.Contains("6:17", html); // position 6 holds clean token 17
    }

    [Fact]
    public void Patch_command_refuses_mixed_prompt_kinds_and_resid_mid_names_no_file()
    {
        string npy = Path.Combine(_folder, "bad.npy");
        Assert.NotEqual(0, Invoke("patch", "--model", Gpt2Folder, "--clean", "a b", "--corrupted-tokens", Corrupted,
            "--answer-token", "3", "--wrong-token", "77", "--component", "resid_pre", "--out", npy));
        Assert.NotEqual(0, Invoke("patch", "--model", Gpt2Folder, "--clean-tokens", Clean, "--corrupted-tokens", "5 17",
            "--answer-token", "3", "--wrong-token", "77", "--component", "resid_pre", "--out", npy));
        Assert.False(File.Exists(npy));
    }

    [Fact]
    public void Plot_files_render_png_and_svg()
    {
        var values = new float[,] { { 0f, 0.5f, 1f }, { -0.2f, 0.1f, 0.9f } };
        string png = Path.Combine(_folder, "map.png"), svg = Path.Combine(_folder, "map.svg"), line = Path.Combine(_folder, "line.png");
        PlotFiles.Heatmap(png, values, "test", "layer", "pos", columnLabels: ["a", "b", "c"]);
        PlotFiles.Heatmap(svg, values, "test", "layer", "pos");
        PlotFiles.LinePlot(line, [("rank", [5.0, 3.0, 1.0])], "lens", "layer", "rank");
        Assert.True(new FileInfo(png).Length > 1000);
        Assert.True(new FileInfo(line).Length > 1000);
        Assert.Contains("<svg", File.ReadAllText(svg));
        Assert.Throws<ArgumentException>(() => PlotFiles.Heatmap(Path.Combine(_folder, "map.jpg"), values, "t", "r", "c"));
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
