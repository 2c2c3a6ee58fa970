using SharpLens.Attribution;
using SharpLens.Cli.Commands;
using SharpLens.Tests.Attribution;
using TorchSharp;

namespace SharpLens.Tests.Cli;

public class GraphCommandTests
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt2-tiny-tied");

    [Fact]
    public void Graph_writes_json_npz_and_viewer_and_refuses_bad_thresholds_writing_nothing()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-graphcmd-{Guid.NewGuid():N}");
        try
        {
            using (var set = RandomTranscoders.Make(2, 32, 16, crossLayer: false, TranscoderActivation.JumpRelu, skip: true, input: "ln2.hook_normalized"))
                TranscoderFiles.Save(set, Path.Combine(folder, "tc"));
            string outDir = Path.Combine(folder, "out");
            int code = GraphCommand.Create().Parse(["--model", Fixture, "--transcoders", Path.Combine(folder, "tc"), "--tokens", "0 5 9 12 7", "--out", outDir, "--batch-size", "32"]).Invoke();
            Assert.Equal(0, code);
            foreach (var f in new[] { "graph.json", "graph.npz", "graph-metadata.json", "graph.html" }) Assert.True(File.Exists(Path.Combine(outDir, f)), f);

            string bad = Path.Combine(folder, "bad");
            Assert.Equal(2, GraphCommand.Create().Parse(["--model", Fixture, "--transcoders", Path.Combine(folder, "tc"), "--tokens", "0 5", "--out", bad, "--node-threshold", "1.5"]).Invoke());
            Assert.False(Directory.Exists(bad) && Directory.EnumerateFileSystemEntries(bad).Any());
            Assert.Equal(2, GraphCommand.Create().Parse(["--model", Fixture, "--transcoders", Path.Combine(folder, "tc"), "--prompt", " ", "--out", bad]).Invoke());
            Assert.Equal(2, GraphCommand.Create().Parse(["--model", Fixture, "--transcoders", Path.Combine(folder, "nothing"), "--tokens", "0 5", "--out", bad]).Invoke());
            Assert.False(Directory.Exists(bad) && Directory.EnumerateFileSystemEntries(bad).Any());
        }
        finally { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
    }
}
