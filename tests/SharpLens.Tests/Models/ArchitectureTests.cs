using SharpLens.Models;
using SharpLens.Models.Components;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

/// <summary>The decoder-zoo components checked against facts derived by hand: rotary geometry, GQA = MHA when
/// groups are single heads, parallel ≠ sequential, soft-cap bounds, sliding windows, and key/value caching.</summary>
public class ArchitectureTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a == b).all().item<bool>();

    static ModelConfig Llama(int? kvHeads = 2, int? window = null, bool parallel = false) => TestModels.Tiny() with
    {
        NormalizationType = Normalization.RMS, PositionalEmbeddingType = PositionalEmbedding.Rotary, ActFn = Activation.Silu,
        GatedMlp = true, NKeyValueHeads = kvHeads, ParallelAttnMlp = parallel,
        UseLocalAttn = window is not null, WindowSize = window, AttnTypes = window is null ? null : ["local", "global"],
        ModelName = "tiny-llama",
    };

    [Fact]
    public void Rotary_preserves_norms_and_makes_q_dot_k_depend_only_on_the_offset()
    {
        using var scope = torch.NewDisposeScope();
        var cfg = TestModels.Tiny() with { PositionalEmbeddingType = PositionalEmbedding.Rotary, RotaryDim = 6 };
        var rotary = new RotaryEmbedding(cfg);
        var generator = new Generator(3);
        var q = torch.randn([1, 1, 1, 8], generator: generator).expand(1, 12, 1, 8); // the same vector at every position
        var k = torch.randn([1, 1, 1, 8], generator: generator).expand(1, 12, 1, 8);
        var (cos, sin) = rotary.Angles(torch.arange(12L).unsqueeze(0));
        var rq = rotary.Rotate(q, cos, sin)[0, .., 0]; // [pos, d_head]
        var rk = rotary.Rotate(k, cos, sin)[0, .., 0];
        Assert.True(torch.allclose(rq.norm(dim: -1), q[0, .., 0].norm(dim: -1), rtol: 1e-5, atol: 1e-6));
        // The last d_head − rotary_dim dimensions are untouched (partial rotary).
        Assert.True(Same(rq[.., 6..], q[0, .., 0, 6..]));
        var dots = rq.matmul(rk.T); // [query_pos, key_pos]
        Assert.True(Math.Abs(dots[5, 2].item<float>() - dots[9, 6].item<float>()) < 1e-5);
        Assert.True(Math.Abs(dots[3, 3].item<float>() - dots[10, 10].item<float>()) < 1e-5);
        Assert.True(Math.Abs(dots[5, 2].item<float>() - dots[5, 3].item<float>()) > 1e-3, "different offsets should give different dot products");
    }

    [Fact]
    public void Grouped_query_attention_with_one_head_per_group_equals_multi_head_attention()
    {
        using var scope = torch.NewDisposeScope();
        using var mha = TestModels.RandomModel(Llama(kvHeads: null));
        var grouped = mha.named_parameters().ToDictionary(p => p.name.Replace("attn.W_K", "attn._W_K").Replace("attn.W_V", "attn._W_V")
            .Replace("attn.b_K", "attn._b_K").Replace("attn.b_V", "attn._b_V"), p => (Tensor)p.parameter);
        using var gqa = HookedTransformer.FromStateDict(Llama(kvHeads: 4), grouped);
        var tokens = TestModels.RandomTokens(2, 9, 50);
        Assert.True(torch.allclose(gqa.Run(tokens), mha.Run(tokens), rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Grouped_query_attention_shares_each_key_head_across_its_group()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(Llama(kvHeads: 2));
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 6, 50));
        Assert.Equal(new long[] { 1, 6, 2, 8 }, cache["blocks.0.attn.hook_k"].shape);
        Assert.Equal(new long[] { 1, 6, 2, 8 }, cache["blocks.0.attn.hook_rot_k"].shape);
        Assert.Equal(new long[] { 1, 6, 4, 8 }, cache["blocks.0.attn.hook_rot_q"].shape);
        Assert.False(model.HookDict.ContainsKey("hook_pos_embed"));
        Assert.Equal(new long[] { 2, 32, 8 }, model.blocks[0].attn._W_K.shape);
        var perQueryHead = model.blocks[0].attn.W_K; // [4, d_model, d_head]: query heads 0, 1 share key head 0
        Assert.True(Same(perQueryHead[0], perQueryHead[1]) && Same(perQueryHead[2], model.blocks[0].attn._W_K[1]));
        // Converting the precision replaces every parameter, the grouped ones included.
        model.MoveTo("cpu", ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, model.blocks[0].attn._W_K.dtype);
        Assert.Equal(ScalarType.BFloat16, model.Run(TestModels.RandomTokens(1, 4, 50)).dtype);
    }

    [Fact]
    public void Parallel_blocks_differ_from_sequential_ones_and_have_no_resid_mid()
    {
        using var scope = torch.NewDisposeScope();
        using var sequential = TestModels.RandomModel(Llama());
        var weights = sequential.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using var parallel = HookedTransformer.FromStateDict(Llama(parallel: true), weights);
        Assert.False(parallel.HookDict.ContainsKey("blocks.0.hook_resid_mid"));
        var tokens = TestModels.RandomTokens(1, 8, 50);
        Assert.True((parallel.Run(tokens) - sequential.Run(tokens)).abs().max().item<float>() > 1e-3);
        // By hand: resid_post = resid_pre + attn_out + mlp_out, with the MLP reading ln2(resid_pre).
        var (_, cache) = parallel.RunWithCache(tokens);
        var expected = cache["blocks.1.hook_resid_pre"] + cache["blocks.1.hook_attn_out"] + cache["blocks.1.hook_mlp_out"];
        Assert.True(torch.allclose(cache["blocks.1.hook_resid_post"], expected, rtol: 1e-5, atol: 1e-5));
        Assert.True(torch.allclose(parallel.blocks[1].mlp!.Forward(parallel.blocks[1].ln2!.Forward(cache["blocks.1.hook_resid_pre"])),
            cache["blocks.1.hook_mlp_out"], rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void Soft_caps_bound_the_logits_and_the_attention_scores()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(Llama() with { OutputLogitsSoftCap = 0.5, AttnScoresSoftCap = 0.25, UseNormalizationBeforeAndAfter = true });
        var (logits, cache) = model.RunWithCache(TestModels.RandomTokens(1, 8, 50));
        Assert.True(logits.abs().max().item<float>() <= 0.5f);
        var scores = cache["blocks.0.attn.hook_attn_scores"];
        Assert.True(scores.masked_fill(scores.isinf(), 0).abs().max().item<float>() <= 0.25f);
        Assert.True(model.HookDict.ContainsKey("blocks.0.ln1_post.hook_normalized") && model.HookDict.ContainsKey("blocks.1.ln2_post.hook_scale"));
    }

    [Fact]
    public void A_local_layer_sees_only_its_window_and_a_global_layer_sees_everything()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(Llama(window: 3));
        var (_, cache) = model.RunWithCache(TestModels.RandomTokens(1, 8, 50));
        var local = cache["blocks.0.attn.hook_pattern"][0, 0]; // [query, key]
        var global = cache["blocks.1.attn.hook_pattern"][0, 0];
        Assert.Equal(0f, local[7, ..5].abs().sum().item<float>());
        Assert.True(local[7, 5..].min().item<float>() > 0);
        Assert.True(global[7].min().item<float>() > 0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Running_in_pieces_through_a_key_value_cache_gives_the_logits_of_running_whole(bool rotary)
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(rotary ? Llama(window: 3) : TestModels.Tiny());
        var tokens = TestModels.RandomTokens(2, 10, 50);
        using var cache = model.NewKeyValueCache();
        var pieces = torch.cat([model.Run(tokens[.., ..6], cache), model.Run(tokens[.., 6..7], cache), model.Run(tokens[.., 7..], cache)], 1);
        Assert.Equal(10, cache.Length);
        Assert.True(torch.allclose(pieces, model.Run(tokens), rtol: 1e-4, atol: 1e-5));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Cached_generation_yields_the_tokens_of_full_recomputation(bool rotary)
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(rotary ? Llama(window: 4) : TestModels.Tiny());
        var prompt = TestModels.RandomTokens(2, 5, 50);
        using var _ = no_grad();
        Assert.True(Same(model.Generate(prompt, 10, temperature: 0), model.Generate(prompt, 10, temperature: 0, useKeyValueCache: false)));
        var sampled = model.Generate(prompt, 10, temperature: 1.0, topK: 20, topP: 0.9, seed: 5);
        Assert.True(Same(sampled, model.Generate(prompt, 10, temperature: 1.0, topK: 20, topP: 0.9, seed: 5, useKeyValueCache: false)));
    }

    [Fact]
    public void A_hook_that_changes_activations_changes_cached_generation()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(Llama());
        var prompt = TestModels.RandomTokens(1, 4, 50);
        using var _ = no_grad();
        var plain = model.Generate(prompt, 6, temperature: 0);
        var W_U = model.unembed.W_U.detach();
        var seen = new List<long>();
        using (model.AddHook("blocks.1.hook_resid_post", (act, _) => { seen.Add(act.shape[1]); return act + 1000 * W_U[.., 7] / W_U[.., 7].norm(); }))
        {
            var steered = model.Generate(prompt, 6, temperature: 0);
            Assert.True((steered[0, 4..] == 7).all().item<bool>());
            Assert.False(Same(plain, steered));
        }
        // The prompt's positions once, then one position per new token, as TransformerLens applies hooks with a cache.
        Assert.Equal(new long[] { 4, 1, 1, 1, 1, 1 }, seen);
    }

    [Fact]
    public void Config_json_round_trips_the_new_fields_and_reads_TransformerLens_spellings()
    {
        var cfg = Llama(window: 3) with { AttnScoresSoftCap = 50, OutputLogitsSoftCap = 30, AttnScale = 4, UseNormalizationBeforeAndAfter = true, RotaryBase = 500000 };
        var back = ModelConfig.FromJson(cfg.ToJson());
        Assert.Equal(cfg.ToJson(), back.ToJson());
        Assert.Contains("\"n_key_value_heads\": 2", cfg.ToJson());
        var tl = ModelConfig.FromJson("""{"d_model": 8, "n_layers": 1, "n_heads": 2, "d_head": 4, "d_mlp": 16, "d_vocab": 10, "n_ctx": 8, "normalization_type": "RMSPre", "positional_embedding_type": "rotary"}""");
        Assert.Equal(Normalization.RMSPre, tl.NormalizationType);
        Assert.Equal(PositionalEmbedding.Rotary, tl.PositionalEmbeddingType);
        Assert.Throws<ArgumentException>(() => (cfg with { NKeyValueHeads = 3 }).Validated());
        Assert.Throws<ArgumentException>(() => (cfg with { WindowSize = null }).Validated());
        Assert.Throws<ArgumentException>(() => (cfg with { RotaryDim = 7 }).Validated());
    }

    [Fact]
    public void Processing_an_rms_model_folds_its_norms_and_keeps_the_log_probs()
    {
        using var scope = torch.NewDisposeScope();
        using var model = TestModels.RandomModel(Llama() with { UseNormalizationBeforeAndAfter = true });
        using var processed = model.ProcessWeights();
        Assert.Equal(Normalization.RMSPre, processed.Config.NormalizationType);
        Assert.Null(processed.blocks[0].ln1.w);
        Assert.NotNull(processed.blocks[0].ln1_post!.w); // post-norms write to the residual stream: not foldable
        var tokens = TestModels.RandomTokens(2, 7, 50);
        var expected = model.Run(tokens).log_softmax(-1);
        Assert.True((processed.Run(tokens).log_softmax(-1) - expected).abs().max().item<float>() < 1e-4);
    }
}
