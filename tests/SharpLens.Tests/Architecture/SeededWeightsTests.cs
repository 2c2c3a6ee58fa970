using System.Globalization;
using SharpLens.Models;
using SharpLens.Models.Components;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Architecture;

/// <summary>
/// A seeded model's weights are a contract: organisms, cached checkpoints and every seed-based test depend on them, and
/// the seed is drawn in named_parameters() order. These fingerprints (name, shape, first and last element, sum of each
/// parameter, in order) were taken from the code before attention stored its keys and values one way; a change to the
/// parameters' names, order, shapes or initialisation fails here.
/// </summary>
public class SeededWeightsTests
{
    static ModelConfig Grouped(int kvHeads) => TestModels.Tiny() with
    {
        NormalizationType = Normalization.RMS, PositionalEmbeddingType = PositionalEmbedding.Rotary, ActFn = Activation.Silu,
        GatedMlp = true, NKeyValueHeads = kvHeads, UseQkNorm = true, ModelName = "tiny-gqa",
    };

    public static TheoryData<string> Models => ["mha", "gqa2", "gqa4"];

    static ModelConfig Config(string name) => name switch
    {
        "mha" => TestModels.Tiny(),
        "gqa2" => Grouped(2),
        _ => Grouped(4), // grouped-query attention configured with as many key/value heads as query heads: stored as _W_K …
    };

    static string Fingerprint(HookedTransformer model) => string.Join("\n", model.named_parameters().Select(np =>
    {
        var flat = np.parameter.detach().flatten().to(ScalarType.Float64);
        return string.Create(CultureInfo.InvariantCulture,
            $"{np.name} {ShapeText.Of(np.parameter.shape)} {flat[0].item<double>():R} {flat[-1].item<double>():R} {flat.sum().item<double>():F5}");
    }));

    [Theory, MemberData(nameof(Models))]
    public void A_seeded_model_has_the_parameters_it_had_before_keys_and_values_were_stored_one_way(string name)
    {
        using var model = new HookedTransformer(Config(name), seed: 5);
        string actual = Fingerprint(model);
        string expected = Expected[name];
        Assert.True(expected == actual, $"{name}: the seeded weights changed. Now:\n{actual}");
    }

    [Fact]
    public void Grouped_keys_and_values_are_stored_once_and_expanded_at_use()
    {
        using var model = new HookedTransformer(Grouped(2), seed: 5);
        var attn = model.blocks[0].attn;
        Assert.Equal([2L, 32, 8], attn._W_K.shape); // [n_kv_heads, d_model, d_head]
        Assert.Equal([4L, 32, 8], attn.W_K.shape); // [n_heads, ...]: each stored head repeated for its group
        Assert.Contains(attn.named_parameters(false), p => p.name == "_W_K");
        Assert.DoesNotContain(attn.named_parameters(false), p => p.name == "W_K");
        using var mha = new HookedTransformer(TestModels.Tiny(), seed: 5);
        Assert.Same(mha.blocks[0].attn._W_K, mha.blocks[0].attn.W_K); // without GQA the stored tensor is the per-head one
    }

    [Theory, MemberData(nameof(Models))]
    public void Converting_the_dtype_keeps_every_parameter_its_name_and_its_value(string name)
    {
        using var model = new HookedTransformer(Config(name), seed: 5);
        var before = model.named_parameters().Select(p => (p.name, Value: p.parameter.detach().clone())).ToList();
        model.to(ScalarType.Float64);
        var after = model.named_parameters().ToList();
        Assert.Equal(before.Select(p => p.name), after.Select(p => p.name));
        foreach (var ((n, value), (_, p)) in before.Zip(after))
        {
            Assert.True(p.dtype == ScalarType.Float64, $"{n} is {p.dtype}");
            Assert.True(value.to(ScalarType.Float64).allclose(p.detach(), rtol: 0, atol: 0), $"{n} changed value");
        }
        var attn = model.blocks[1].attn;
        Assert.Same(attn._W_V, attn.named_parameters(false).Single(p => p.name.EndsWith("W_V", StringComparison.Ordinal)).parameter); // the one the forward uses
        Assert.Equal(ScalarType.Float64, attn._W_V.dtype);
        Assert.Equal(ScalarType.Float64, attn.b_V.dtype);
        using var logits = model.Run(TestModels.RandomTokens(1, 6, 50));
        Assert.Equal(ScalarType.Float64, logits.dtype);
    }

    static readonly Dictionary<string, string> Expected = new()
    {
        ["mha"] = """
            embed.W_E [50, 32] 0.2605448067188263 0.18368837237358093 4.23463
            pos_embed.W_pos [24, 32] 0.026137830689549446 -0.11751896142959595 0.65358
            blocks.0.ln1.w [32] 1 1 32.00000
            blocks.0.ln1.b [32] 0 0 0.00000
            blocks.0.attn.W_Q [4, 32, 8] 0.05783110111951828 -0.05218086019158363 -1.20204
            blocks.0.attn.b_Q [4, 8] 0 0 0.00000
            blocks.0.attn.W_K [4, 32, 8] 0.16892027854919434 -0.03053588978946209 -3.37576
            blocks.0.attn.W_V [4, 32, 8] 0.1353212296962738 0.12404275685548782 -10.38629
            blocks.0.attn.b_K [4, 8] 0 0 0.00000
            blocks.0.attn.b_V [4, 8] 0 0 0.00000
            blocks.0.attn.W_O [4, 8, 32] -0.030117014423012733 -0.08723565936088562 3.53186
            blocks.0.attn.b_O [32] 0 0 0.00000
            blocks.0.ln2.w [32] 1 1 32.00000
            blocks.0.ln2.b [32] 0 0 0.00000
            blocks.0.mlp.W_in [32, 64] 0.039648886770009995 -0.0026367499958723783 -12.86417
            blocks.0.mlp.b_in [64] 0 0 0.00000
            blocks.0.mlp.W_out [64, 32] 0.20451489090919495 0.17799916863441467 -1.27540
            blocks.0.mlp.b_out [32] 0 0 0.00000
            blocks.1.ln1.w [32] 1 1 32.00000
            blocks.1.ln1.b [32] 0 0 0.00000
            blocks.1.attn.W_Q [4, 32, 8] 0.20182737708091736 0.001968383090570569 1.38698
            blocks.1.attn.b_Q [4, 8] 0 0 0.00000
            blocks.1.attn.W_K [4, 32, 8] -0.022141311317682266 0.06106775254011154 -4.53376
            blocks.1.attn.W_V [4, 32, 8] -0.0021685862448066473 -0.15190435945987701 -0.58844
            blocks.1.attn.b_K [4, 8] 0 0 0.00000
            blocks.1.attn.b_V [4, 8] 0 0 0.00000
            blocks.1.attn.W_O [4, 8, 32] -0.07770120352506638 0.05093812197446823 -3.18713
            blocks.1.attn.b_O [32] 0 0 0.00000
            blocks.1.ln2.w [32] 1 1 32.00000
            blocks.1.ln2.b [32] 0 0 0.00000
            blocks.1.mlp.W_in [32, 64] -0.1668877750635147 -0.02938191592693329 4.77910
            blocks.1.mlp.b_in [64] 0 0 0.00000
            blocks.1.mlp.W_out [64, 32] -0.03383012115955353 0.038956835865974426 -11.68425
            blocks.1.mlp.b_out [32] 0 0 0.00000
            ln_final.w [32] 1 1 32.00000
            ln_final.b [32] 0 0 0.00000
            unembed.W_U [32, 50] -0.03970945253968239 -0.1373749077320099 1.06836
            unembed.b_U [50] 0 0 0.00000
            """,
        ["gqa2"] = """
            embed.W_E [50, 32] 0.2605448067188263 0.18368837237358093 4.23463
            blocks.0.ln1.w [32] 1 1 32.00000
            blocks.0.attn.W_Q [4, 32, 8] 0.026137830689549446 -0.013637793250381947 4.24019
            blocks.0.attn.b_Q [4, 8] 0 0 0.00000
            blocks.0.attn._W_K [2, 32, 8] 0.005937980953603983 -0.08386991918087006 -5.30004
            blocks.0.attn._W_V [2, 32, 8] 0.05435212329030037 0.1992688626050949 0.57168
            blocks.0.attn._b_K [2, 8] 0 0 0.00000
            blocks.0.attn._b_V [2, 8] 0 0 0.00000
            blocks.0.attn.W_O [4, 8, 32] 0.04174937307834625 0.17307426035404205 -7.32124
            blocks.0.attn.b_O [32] 0 0 0.00000
            blocks.0.attn.q_norm.w [8] 1 1 8.00000
            blocks.0.attn.k_norm.w [8] 1 1 8.00000
            blocks.0.ln2.w [32] 1 1 32.00000
            blocks.0.mlp.W_gate [32, 64] -0.08543393015861511 0.09051072597503662 -6.27976
            blocks.0.mlp.W_in [32, 64] -0.12859465181827545 -0.045429930090904236 -10.65805
            blocks.0.mlp.b_in [64] 0 0 0.00000
            blocks.0.mlp.W_out [64, 32] 0.18357422947883606 0.028634412214159966 -2.71544
            blocks.0.mlp.b_out [32] 0 0 0.00000
            blocks.1.ln1.w [32] 1 1 32.00000
            blocks.1.attn.W_Q [4, 32, 8] -0.028578197583556175 0.1829262226819992 4.21946
            blocks.1.attn.b_Q [4, 8] 0 0 0.00000
            blocks.1.attn._W_K [2, 32, 8] -0.032766349613666534 0.14381253719329834 0.40633
            blocks.1.attn._W_V [2, 32, 8] 0.3193219006061554 0.09190073609352112 -4.31542
            blocks.1.attn._b_K [2, 8] 0 0 0.00000
            blocks.1.attn._b_V [2, 8] 0 0 0.00000
            blocks.1.attn.W_O [4, 8, 32] 0.08981829136610031 0.2980117201805115 -2.91686
            blocks.1.attn.b_O [32] 0 0 0.00000
            blocks.1.attn.q_norm.w [8] 1 1 8.00000
            blocks.1.attn.k_norm.w [8] 1 1 8.00000
            blocks.1.ln2.w [32] 1 1 32.00000
            blocks.1.mlp.W_gate [32, 64] -0.026404213160276413 0.031065968796610832 3.09939
            blocks.1.mlp.W_in [32, 64] -0.34550318121910095 0.08758619427680969 -7.01744
            blocks.1.mlp.b_in [64] 0 0 0.00000
            blocks.1.mlp.W_out [64, 32] -0.06414655596017838 -0.0941741093993187 -3.61947
            blocks.1.mlp.b_out [32] 0 0 0.00000
            ln_final.w [32] 1 1 32.00000
            unembed.W_U [32, 50] 0.1939154863357544 0.4299459755420685 3.23073
            unembed.b_U [50] 0 0 0.00000
            """,
        ["gqa4"] = """
            embed.W_E [50, 32] 0.2605448067188263 0.18368837237358093 4.23463
            blocks.0.ln1.w [32] 1 1 32.00000
            blocks.0.attn.W_Q [4, 32, 8] 0.026137830689549446 -0.013637793250381947 4.24019
            blocks.0.attn.b_Q [4, 8] 0 0 0.00000
            blocks.0.attn._W_K [4, 32, 8] 0.005937980953603983 0.1992688626050949 -4.72836
            blocks.0.attn._W_V [4, 32, 8] 0.04174937307834625 0.17307426035404205 -7.32124
            blocks.0.attn._b_K [4, 8] 0 0 0.00000
            blocks.0.attn._b_V [4, 8] 0 0 0.00000
            blocks.0.attn.W_O [4, 8, 32] -0.08543393015861511 0.11872933059930801 -1.56228
            blocks.0.attn.b_O [32] 0 0 0.00000
            blocks.0.attn.q_norm.w [8] 1 1 8.00000
            blocks.0.attn.k_norm.w [8] 1 1 8.00000
            blocks.0.ln2.w [32] 1 1 32.00000
            blocks.0.mlp.W_gate [32, 64] 0.2188107967376709 -0.043363090604543686 -7.72449
            blocks.0.mlp.W_in [32, 64] 0.1006966158747673 -0.10482260584831238 -5.33719
            blocks.0.mlp.b_in [64] 0 0 0.00000
            blocks.0.mlp.W_out [64, 32] -0.06821773946285248 0.1829262226819992 -0.80982
            blocks.0.mlp.b_out [32] 0 0 0.00000
            blocks.1.ln1.w [32] 1 1 32.00000
            blocks.1.attn.W_Q [4, 32, 8] -0.032766349613666534 0.09190073609352112 -3.90909
            blocks.1.attn.b_Q [4, 8] 0 0 0.00000
            blocks.1.attn._W_K [4, 32, 8] 0.08981829136610031 0.2980117201805115 -2.91686
            blocks.1.attn._W_V [4, 32, 8] -0.026404213160276413 -0.09878687560558319 -3.90963
            blocks.1.attn._b_K [4, 8] 0 0 0.00000
            blocks.1.attn._b_V [4, 8] 0 0 0.00000
            blocks.1.attn.W_O [4, 8, 32] -1.9018891180166975E-05 0.031065968796610832 7.00901
            blocks.1.attn.b_O [32] 0 0 0.00000
            blocks.1.attn.q_norm.w [8] 1 1 8.00000
            blocks.1.attn.k_norm.w [8] 1 1 8.00000
            blocks.1.ln2.w [32] 1 1 32.00000
            blocks.1.mlp.W_gate [32, 64] -0.34550318121910095 0.08758619427680969 -7.01744
            blocks.1.mlp.W_in [32, 64] -0.06414655596017838 -0.0941741093993187 -3.61947
            blocks.1.mlp.b_in [64] 0 0 0.00000
            blocks.1.mlp.W_out [64, 32] 0.1939154863357544 0.19701431691646576 4.95665
            blocks.1.mlp.b_out [32] 0 0 0.00000
            ln_final.w [32] 1 1 32.00000
            unembed.W_U [32, 50] -0.1676950305700302 -0.045119814574718475 5.43391
            unembed.b_U [50] 0 0 0.00000
            """,
    };
}
