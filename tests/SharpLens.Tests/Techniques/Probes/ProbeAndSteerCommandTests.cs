using System.CommandLine;
using System.Text.Json;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Organisms;
using SharpLens.Tests.Organisms;
using Xunit.Abstractions;

namespace SharpLens.Tests.Techniques.Probes;

/// <summary>
/// `sharplens probe` and `sharplens steer` on `--model latent`, in-process. The collection's small organism has the CLI's
/// default settings; it is saved into a temporary --organism-cache so the commands load it instead of training their own.
/// </summary>
[Collection("latent organism")]
public class ProbeAndSteerCommandTests : IDisposable
{
    readonly string _folder = Path.Combine(Path.GetTempPath(), $"sharplens-probe-{Guid.NewGuid():N}");
    readonly ITestOutputHelper _output;

    public ProbeAndSteerCommandTests(SmallLatentOrganism small, ITestOutputHelper output)
    {
        _output = output;
        Assert.Equal(new LatentSettings(), SmallLatentOrganism.Settings);
        small.Organism.Save(OrganismCache.FolderFor(SmallLatentOrganism.Settings.CacheName, _folder));
    }

    static int Invoke(Command command, params string[] args) => new RootCommand { command }.Parse(args).Invoke();

    [Fact]
    public void Probe_command_on_the_latent_organism_reads_the_latent_after_layer_0_and_not_from_the_embedding()
    {
        string outFolder = Path.Combine(_folder, "probe");
        Assert.Equal(0, Invoke(ProbeCommand.Create(), "probe", "--model", "latent", "--organism-cache", _folder, "--out", outFolder));

        var hooks = JsonDocument.Parse(File.ReadAllText(Path.Combine(outFolder, "summary.json"))).RootElement
            .EnumerateArray().Select(e => e.GetProperty("hook").GetString()!).ToList();
        using var accuracy = NumpyFiles.LoadNpy(Path.Combine(outFolder, "accuracy.npy"));
        var acc = accuracy.data<float>().ToArray();
        for (int i = 0; i < hooks.Count; i++) _output.WriteLine($"{hooks[i],-26} {acc[i]:0.000}");
        Assert.Equal(["hook_embed", "blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"], hooks);
        Assert.InRange(acc[0], 0.35f, 0.65f); // chance: the last token's embedding knows nothing of x₁
        Assert.InRange(acc[1], 0.35f, 0.65f);
        Assert.True(acc[2] >= 0.95f, $"after layer 0: {acc[2]:0.000}");
        Assert.True(acc[3] >= 0.95f, $"after layer 1: {acc[3]:0.000}");
        Assert.True(File.Exists(Path.Combine(outFolder, "direction-blocks.1.hook_resid_pre.npy")));
    }

    [Fact]
    public void Steer_command_with_the_contrastive_vector_flips_the_latent_organisms_answer()
    {
        var settings = SmallLatentOrganism.Settings;
        var secret = settings.SecretSet();
        var outside = Enumerable.Range(LatentSettings.FirstContent, settings.ContentCount).Except(secret).ToArray();
        string Prompt(int first) => $"0 {first} 9 12 3 7 8";
        // The vector points from "x₁ in S" (answer Yes) to "x₁ outside S" (answer No); the prompt's x₁ is in S.
        // Hook, positions and coefficient 3 are those SteeringTests measured flipping most prompts on this organism.
        var positive = outside.Take(6).Select(Prompt).ToArray();
        var negative = secret.Take(6).Select(Prompt).ToArray();
        var console = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(console);
        int code;
        try
        {
            code = Invoke(SteerCommand.Create(), ["steer", "--model", "latent", "--organism-cache", _folder, "--tokens", Prompt(secret[^1]),
                "--hook", "blocks.0.hook_resid_post", "--positions", "last", "--pair-tokens", "--positive", .. positive, "--negative", .. negative,
                "--coefficient", "3", "--max-new-tokens", "1"]);
        }
        finally { Console.SetOut(previous); }
        string text = console.ToString();
        _output.WriteLine(text);
        Assert.Equal(0, code);
        // Other tests may write to the console meanwhile: read only this command's two lines.
        var lines = text.Split('\n').Select(l => l.Trim()).ToList();
        Assert.Equal($"Unsteered: {LatentSettings.Yes}", lines.Single(l => l.StartsWith("Unsteered:")));
        Assert.Equal($"Steered:   {LatentSettings.No}", lines.Single(l => l.StartsWith("Steered:")));
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder)) Directory.Delete(_folder, recursive: true);
    }
}
