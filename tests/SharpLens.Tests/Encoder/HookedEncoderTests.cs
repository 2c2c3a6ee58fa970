using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Encoder;

/// <summary>The encoder's hook names, bidirectional masked attention and hooks, on a small random BERT.</summary>
public sealed class HookedEncoderTests
{
    static readonly ModelConfig Tiny = new()
    {
        DModel = 16, NLayers = 2, NHeads = 4, DHead = 4, DMlp = 32, DVocab = 50, NCtx = 12,
        ActFn = Activation.Gelu, Eps = 1e-12, ModelName = "tiny-bert",
    };

    static HookedEncoder RandomEncoder(bool mlm = false)
    {
        var model = new HookedEncoder(Tiny, withMlmHead: mlm, seed: 3);
        using var _ = torch.no_grad();
        var generator = new Generator(11);
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith(".w", StringComparison.Ordinal)) p.normal_(1, 0.1, generator);
            else if (!name.Contains(".W", StringComparison.Ordinal)) p.normal_(0, 0.2, generator); // biases too, so none hides a bug
        return model;
    }

    static readonly Tensor Tokens = torch.tensor(new long[] { 1, 7, 9, 23, 4, 2, 1, 30, 8, 2, 0, 0 }, [2, 6]);
    static readonly Tensor Mask = torch.tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0 }, [2, 6]);

    [Fact]
    public void Hook_points_and_parameters_carry_transformer_lens_encoder_names()
    {
        using var model = RandomEncoder(mlm: true);
        var expected = new List<string> { "embed.hook_embed", "embed.hook_pos_embed", "embed.hook_token_type_embed", "embed.ln.hook_scale", "embed.ln.hook_normalized", "hook_full_embed" };
        for (int l = 0; l < 2; l++)
            expected.AddRange(new[]
            {
                "hook_resid_pre", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores", "attn.hook_pattern", "attn.hook_z",
                "hook_attn_out", "hook_resid_mid", "ln1.hook_scale", "ln1.hook_normalized", "mlp.hook_pre", "mlp.hook_post", "hook_mlp_out",
                "hook_resid_post", "ln2.hook_scale", "ln2.hook_normalized", "hook_normalized_resid_post",
            }.Select(n => $"blocks.{l}.{n}"));
        expected.AddRange(["mlm_head.ln.hook_scale", "mlm_head.ln.hook_normalized"]);
        Assert.Equal(expected.Order(StringComparer.Ordinal), model.HookDict.Keys.Order(StringComparer.Ordinal));
        // In forward order: a block's points come after the embedding's and before the next block's.
        var order = model.HookDict.Keys.ToList();
        Assert.True(order.IndexOf("hook_full_embed") < order.IndexOf("blocks.0.hook_resid_pre"));
        Assert.True(order.IndexOf("blocks.0.hook_normalized_resid_post") < order.IndexOf("blocks.1.hook_resid_pre"));

        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal([50L, 16L], parameters["embed.embed.W_E"]);
        Assert.Equal([12L, 16L], parameters["embed.pos_embed.W_pos"]);
        Assert.Equal([2L, 16L], parameters["embed.token_type_embed.W_token_type"]);
        Assert.Equal([4L, 16L, 4L], parameters["blocks.1.attn.W_Q"]);
        Assert.Equal([4L, 4L, 16L], parameters["blocks.1.attn.W_O"]);
        Assert.Equal([16L, 32L], parameters["blocks.0.mlp.W_in"]);
        Assert.Equal([16L], parameters["blocks.0.ln2.w"]);
        Assert.Equal([16L, 16L], parameters["mlm_head.W"]);
        Assert.Equal([16L, 50L], parameters["unembed.W_U"]);
        Assert.Equal([50L], parameters["unembed.b_U"]);
    }

    [Fact]
    public void Attention_sees_later_tokens_and_never_padding()
    {
        using var model = RandomEncoder();
        using var scope = torch.NewDisposeScope();
        var (_, cache) = model.RunWithCache(Tokens, n => n.EndsWith("hook_pattern"), attentionMask: Mask);
        using (cache)
        {
            var pattern = cache["blocks.0.attn.hook_pattern"]; // [batch, head, query, key]
            Assert.Equal([2L, 4L, 6L, 6L], pattern.shape);
            Assert.True((pattern.sum(-1) - 1).abs().max().item<float>() < 1e-5, "each query's pattern sums to 1");
            Assert.Equal(0f, pattern[1, .., .., 4..].abs().max().item<float>()); // padding keys get nothing
            Assert.True(pattern[0, .., 0, 5].min().item<float>() > 0, "the first query attends to the last key");
        }

        // Changing the last token changes the first position's output: information flows backwards too.
        var changed = Tokens.clone();
        changed[0, 5] = torch.tensor(40L);
        var before = model.Encode(Tokens, Mask)[0, 0];
        var after = model.Encode(changed, Mask)[0, 0];
        Assert.True((before - after).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Hooked_and_fused_attention_give_the_same_outputs()
    {
        using var model = RandomEncoder(mlm: true);
        using var scope = torch.NewDisposeScope();
        var fused = model.Run(Tokens, Mask);
        var (hooked, cache) = model.RunWithCache(Tokens, attentionMask: Mask);
        using (cache)
        {
            Assert.Equal([2L, 6L, 50L], hooked.shape);
            Assert.True((fused - hooked).abs().max().item<float>() < 1e-5);
            // The cache's last block output is what Encode returns.
            Assert.True((cache["blocks.1.hook_normalized_resid_post"] - model.Encode(Tokens, Mask)).abs().max().item<float>() < 1e-5);
            Assert.True((cache["blocks.0.hook_resid_mid"] - cache["blocks.0.hook_resid_pre"] - cache["blocks.0.hook_attn_out"]).abs().max().item<float>() < 1e-6);
        }
    }

    [Fact]
    public void Hooks_replace_activations_for_one_call_only()
    {
        using var model = RandomEncoder();
        using var scope = torch.NewDisposeScope();
        var clean = model.Encode(Tokens, Mask);
        HookFunction zero = (a, _) => torch.zeros_like(a);
        var ablated = model.RunWithHooks(Tokens, [("blocks.0.hook_attn_out", zero)], Mask);
        Assert.True((ablated - clean).abs().max().item<float>() > 1e-3);
        Assert.Equal(0f, (model.Encode(Tokens, Mask) - clean).abs().max().item<float>());
        Assert.Throws<HookNotFoundException>(() => model.RunWithHooks(Tokens, [("blocks.0.hook_attn_outt", zero)], Mask));
    }

    [Fact]
    public void Token_types_change_the_output_and_bad_inputs_are_named()
    {
        using var model = RandomEncoder();
        using var scope = torch.NewDisposeScope();
        var typeB = torch.ones_like(Tokens);
        Assert.True((model.Encode(Tokens, Mask, typeB) - model.Encode(Tokens, Mask)).abs().max().item<float>() > 1e-3);
        Assert.Equal("tokenTypeIds", Assert.Throws<ModelInputException>(() => model.Encode(Tokens, Mask, typeB * 2)).ParamName);
        Assert.Equal("attentionMask", Assert.Throws<ModelInputException>(() => model.Encode(Tokens, Mask[.., ..3])).ParamName);
        Assert.Equal("tokens", Assert.Throws<ModelInputException>(() => model.Encode(Tokens + 100)).ParamName);
        Assert.Throws<SharpLensArgumentException>(() => model.ToTokens(["no tokenizer attached"]));
    }
}
