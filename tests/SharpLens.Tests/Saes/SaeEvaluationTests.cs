using SharpLens.Interop;
using SharpLens.Saes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes;

public class SaeEvaluationTests
{
    const string Hook = "blocks.1.hook_resid_pre";

    /// <summary>ReLU(x) − ReLU(−x) = x: features [I, −I], decoder [I; −I] reconstruct any input exactly.</summary>
    static Sae IdentitySae(int d)
    {
        var sae = new Sae(new SaeConfig(SaeArchitecture.Standard, d, 2 * d) { Metadata = new() { HookName = Hook } });
        using var _ = torch.no_grad();
        var eye = torch.eye(d);
        sae.W_enc.copy_(torch.cat([eye, -eye], 1));
        sae.W_dec.copy_(torch.cat([eye, -eye], 0));
        sae.b_enc!.zero_();
        sae.b_dec.zero_();
        return sae;
    }

    [Fact]
    public void Exact_sae_has_zero_mse_full_explained_variance_and_half_density()
    {
        using var scope = torch.NewDisposeScope();
        using var sae = IdentitySae(8);
        var x = torch.randn(4000, 8, generator: new Generator(5));
        var r = SaeEvaluation.Reconstruction(sae, [(x[..1000], null), (x[1000..], null)]);
        Assert.Equal(4000, r.Inputs);
        Assert.True(r.Mse < 1e-10);
        Assert.Equal(1.0, r.ExplainedVariance, 6);
        Assert.Equal(8.0, r.L0, 6); // exactly one of each ± pair fires
        Assert.All(r.FeatureDensity, d => Assert.InRange(d, 0.45f, 0.55f));
        Assert.Equal(0, r.DeadFeatures);
        Assert.Equal(16, r.DenseFeatures());
    }

    [Fact]
    public void Reconstruction_statistics_match_a_direct_computation()
    {
        using var scope = torch.NewDisposeScope();
        using var sae = SaeFiles.Load(Path.Combine(SaeFilesTests.Fixtures, "standard"));
        var x = NumpyFiles.LoadNpy(Path.Combine(SaeFilesTests.Fixtures, "X.npy"));
        var features = NumpyFiles.LoadNpy(Path.Combine(SaeFilesTests.Fixtures, "standard", "features.npy"));
        var output = NumpyFiles.LoadNpy(Path.Combine(SaeFilesTests.Fixtures, "standard", "output.npy"));
        var r = SaeEvaluation.Reconstruction(sae, x);
        double mse = (x - output).pow(2).sum(-1).mean().item<float>();
        double ev = 1 - ((x - output).pow(2).sum() / (x - x.mean([0], keepdim: true)).pow(2).sum()).item<float>();
        Assert.Equal(mse, r.Mse, 4);
        Assert.Equal(ev, r.ExplainedVariance, 4);
        Assert.Equal(features.gt(0).sum(-1).to(ScalarType.Float64).mean().item<double>(), r.L0, 6);
        var density = features.gt(0).to(ScalarType.Float32).mean([0]);
        for (int i = 0; i < r.FeatureDensity.Length; i++) Assert.Equal(density[i].item<float>(), r.FeatureDensity[i], 6);
    }

    [Fact]
    public void Ce_loss_recovered_is_one_for_an_exact_sae_and_zero_for_one_that_outputs_zero()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel();
        var tokens = TestModels.RandomTokens(3, 12, model.Config.DVocab);
        using var exact = IdentitySae(32);
        var perfect = SaeEvaluation.CeLossRecovered(model, exact, tokens);
        Assert.Equal(perfect.Clean, perfect.Spliced, 4);
        Assert.True(Math.Abs(perfect.ZeroAblation - perfect.Clean) > 1e-2, "zeroing the residual stream should hurt");
        Assert.Equal(1.0, perfect.Recovered, 3);

        using var nothing = IdentitySae(32);
        using (torch.no_grad()) nothing.W_dec.zero_();
        var none = SaeEvaluation.CeLossRecovered(model, nothing, tokens);
        Assert.Equal(none.ZeroAblation, none.Spliced, 4);
        Assert.Equal(0.0, none.Recovered, 3);
    }

    [Fact]
    public void Density_histogram_bins_log10_rates_and_counts_dead_features_apart()
    {
        var h = SaeEvaluation.Histogram([0f, 1e-7f, 1e-3f, 1e-3f, 0.5f, 1f], bins: 8, minLog10: -8);
        Assert.Equal(9, h.Edges.Length);
        Assert.Equal(1, h.Dead);
        Assert.Equal([0, 1, 0, 0, 0, 2, 0, 2], h.Counts); // bins of width 1: [-8,-7) ... [-1,0]; 1e-3 → [-3,-2)
        string png = Path.Combine(Path.GetTempPath(), $"sharplens-density-{Guid.NewGuid():N}.png");
        try
        {
            SaeEvaluation.SaveHistogramPlot(h, png);
            Assert.True(new FileInfo(png).Length > 1000);
        }
        finally { File.Delete(png); }
    }
}
