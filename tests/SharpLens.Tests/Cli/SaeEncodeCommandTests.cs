using System.CommandLine;
using SharpLens.Cli.Commands;
using SharpLens.Interop;
using SharpLens.Tests.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Cli;

public class SaeEncodeCommandTests
{
    [Theory]
    [InlineData("jumprelu")]
    [InlineData("gemma_scope")]
    public void Sae_encode_writes_the_reference_features_and_reconstruction(string name)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            string sae = name == "gemma_scope" ? Path.Combine(SaeFilesTests.Fixtures, name, "params.npz") : Path.Combine(SaeFilesTests.Fixtures, name);
            string x = Path.Combine(SaeFilesTests.Fixtures, "X.npy");
            string features = Path.Combine(folder, "f.npy"), recon = Path.Combine(folder, "r.npy");
            var root = new RootCommand { SaeCommand.Create() };
            int code = root.Parse(["sae", "encode", "--sae", sae, "--input", x, "--out", features, "--reconstruction", recon]).Invoke();
            Assert.Equal(0, code);

            using var scope = torch.NewDisposeScope();
            var expectedFeatures = NumpyFiles.LoadNpy(Path.Combine(SaeFilesTests.Fixtures, name, "features.npy"));
            var expectedOutput = NumpyFiles.LoadNpy(Path.Combine(SaeFilesTests.Fixtures, name, "output.npy"));
            var writtenFeatures = NumpyFiles.LoadNpy(features);
            var writtenOutput = NumpyFiles.LoadNpy(recon);
            Assert.Equal(ScalarType.Float32, writtenFeatures.dtype);
            Assert.Equal(expectedFeatures.shape, writtenFeatures.shape);
            Assert.True((writtenFeatures - expectedFeatures).abs().max().item<float>() < 1e-5f);
            Assert.True((writtenOutput - expectedOutput).abs().max().item<float>() < 1e-5f);
        }
        finally { Directory.Delete(folder, recursive: true); }
    }

    [Fact]
    public void Sae_encode_rejects_input_of_the_wrong_width_with_exit_code_2()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var error = new StringWriter();
        var previous = Console.Error;
        try
        {
            string x = Path.Combine(folder, "x.npy");
            NumpyFiles.SaveNpy(x, torch.zeros(3, 5));
            Console.SetError(error);
            int code = new RootCommand { SaeCommand.Create() }
                .Parse(["sae", "encode", "--sae", Path.Combine(SaeFilesTests.Fixtures, "standard"), "--input", x, "--out", Path.Combine(folder, "f.npy")]).Invoke();
            Assert.Equal(2, code);
            Assert.Contains("d_in = 16", error.ToString());
            Assert.False(File.Exists(Path.Combine(folder, "f.npy")));
        }
        finally { Console.SetError(previous); Directory.Delete(folder, recursive: true); }
    }
}

public class SaeEncodeAtomicOutputTests
{
    [Fact]
    public void Sae_encode_leaves_no_first_output_when_the_second_cannot_be_written()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"sharplens-sae-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var error = new StringWriter();
        var previous = Console.Error;
        try
        {
            string blocker = Path.Combine(folder, "not-a-folder");
            File.WriteAllText(blocker, "a file where the reconstruction's folder should be");
            string features = Path.Combine(folder, "f.npy");
            Console.SetError(error);
            int code = new RootCommand { SaeCommand.Create() }.Parse(["sae", "encode", "--sae", Path.Combine(SaeFilesTests.Fixtures, "standard"),
                "--input", Path.Combine(SaeFilesTests.Fixtures, "X.npy"), "--out", features, "--reconstruction", Path.Combine(blocker, "r.npy")]).Invoke();
            Assert.Equal(2, code);
            Assert.Contains(Path.Combine(blocker, "r.npy"), error.ToString());
            Assert.False(File.Exists(features));
            Assert.Equal(["not-a-folder"], Directory.GetFileSystemEntries(folder).Select(Path.GetFileName));
        }
        finally { Console.SetError(previous); Directory.Delete(folder, recursive: true); }
    }
}
