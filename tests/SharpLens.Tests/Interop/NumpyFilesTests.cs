using System.Text;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Interop;

public class NumpyFilesTests
{
    static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"sharplens-npy-{Guid.NewGuid():N}-{name}");

    [Fact]
    public void Npy_header_is_the_one_numpy_writes()
    {
        string path = Temp("a.npy");
        try
        {
            NumpyFiles.SaveNpy(path, arange(6, dtype: ScalarType.Float32).reshape(2, 3));
            byte[] bytes = File.ReadAllBytes(path);
            // NumPy 1.24's numpy.save(np.arange(6, dtype='<f4').reshape(2, 3)) writes exactly these 152 bytes (checked):
            // 10 bytes of preamble, a 118-byte header padded to a 64-byte boundary, then 24 data bytes.
            Assert.Equal(152, bytes.Length);
            Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0 }, bytes[..10]);
            string header = Encoding.ASCII.GetString(bytes, 10, 118);
            Assert.Equal("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + new string(' ', 58) + "\n", header);
            Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5 }, Enumerable.Range(0, 6).Select(i => BitConverter.ToSingle(bytes, 128 + 4 * i)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Arrays_round_trip_through_npy_and_npz()
    {
        string npy = Temp("b.npy"), npz = Temp("c.npz");
        try
        {
            var x = randn(3, 4, 5);
            var ids = tensor(new long[] { 7, 8, 9 });
            NumpyFiles.SaveNpy(npy, x);
            Assert.Equal(0f, (NumpyFiles.LoadNpy(npy) - x).abs().max().item<float>());
            NumpyFiles.SaveNpz(npz, new Dictionary<string, Tensor> { ["blocks.0.hook_resid_pre"] = x, ["tokens"] = ids });
            var back = NumpyFiles.LoadNpz(npz);
            Assert.Equal(["blocks.0.hook_resid_pre", "tokens"], back.Keys.Order());
            Assert.Equal(0f, (back["blocks.0.hook_resid_pre"] - x).abs().max().item<float>());
            Assert.Equal(new long[] { 7, 8, 9 }, back["tokens"].data<long>().ToArray());
            Assert.Empty(Directory.GetFiles(Path.GetTempPath(), Path.GetFileName(npz) + ".*.tmp"));
        }
        finally { File.Delete(npy); File.Delete(npz); }
    }

    [Fact]
    public void A_truncated_npy_is_refused_by_name()
    {
        string path = Temp("d.npy");
        try
        {
            NumpyFiles.SaveNpy(path, ones(10));
            File.WriteAllBytes(path, File.ReadAllBytes(path)[..^8]);
            var e = Assert.Throws<SharpLensFileException>(() => NumpyFiles.LoadNpy(path));
            Assert.Contains(path, e.Message);
            Assert.Equal(path, e.FilePath);
        }
        finally { File.Delete(path); }
    }
}
