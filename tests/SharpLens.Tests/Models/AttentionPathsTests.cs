using SharpLens.Models;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

/// <summary>
/// The fused attention kernel (used when nothing hooks the scores or the pattern) and the explicit path (used when
/// something does) must be the same function, forward and backward, with and without padding.
/// </summary>
public class AttentionPathsTests
{
    static HookedTransformer SmallModel(int layers = 2)
    {
        var model = new HookedTransformer(new ModelConfig
        {
            DModel = 64, NLayers = layers, NHeads = 4, DHead = 16, DMlp = 256, DVocab = 97, NCtx = 32,
        }, seed: 3);
        // Random biases too, so a wrong bias layout cannot hide behind zeros.
        using var _ = no_grad();
        var generator = new Generator(11);
        foreach (var (name, p) in model.named_parameters())
            if (name.Split('.')[^1].StartsWith("b_", StringComparison.Ordinal)) p.normal_(0, 0.1, generator);
        return model;
    }

    static Tensor Tokens(long batch = 2, long pos = 20) =>
        randint(0, 97, [batch, pos], dtype: ScalarType.Int64, generator: new Generator(5));

    [Fact]
    public void A_noop_pattern_hook_leaves_the_logits_as_the_fused_kernel_gives_them()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = Tokens();
        var fused = model.Run(tokens);
        var explicitPath = model.RunWithHooks(tokens, [("blocks.0.attn.hook_pattern", (_, _) => null), ("blocks.1.attn.hook_pattern", (_, _) => null)]);
        Assert.True((fused - explicitPath).abs().max().item<float>() < 1e-5f);
    }

    [Fact]
    public void With_left_padding_both_attention_paths_agree_on_the_real_tokens()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = Tokens(2, 12);
        var padding = ones(2, 12, dtype: ScalarType.Int64);
        padding[1, ..4] = zeros(4, dtype: ScalarType.Int64); // the second sequence is left-padded by 4
        var fused = model.Run(tokens, padding);
        var explicitPath = model.RunWithHooks(tokens, [("blocks.1.attn.hook_attn_scores", (_, _) => null)], padding);
        var real = padding.to(ScalarType.Bool).unsqueeze(-1).expand_as(fused);
        Assert.True((fused - explicitPath).abs().masked_select(real).max().item<float>() < 1e-5f);
    }

    [Fact]
    public void Explicit_and_fused_attention_give_the_same_gradients()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        var tokens = Tokens();
        Tensor GradOfW_Q(bool explicitPath)
        {
            model.zero_grad();
            using var hook = explicitPath ? model.AddHook(n => n.EndsWith("hook_pattern", StringComparison.Ordinal), (_, _) => null) : null;
            var logits = model.Run(tokens);
            nn.functional.cross_entropy(logits[.., ..^1].reshape(-1, 97), tokens[.., 1..].reshape(-1)).backward();
            return model.blocks[0].attn.W_Q.grad!.clone();
        }
        var fused = GradOfW_Q(false);
        var explicitPath = GradOfW_Q(true);
        Assert.True(fused.abs().max().item<float>() > 0);
        Assert.True((fused - explicitPath).abs().max().item<float>() < 1e-5f * fused.abs().max().item<float>() + 1e-7f);
    }

    [Fact]
    public void The_cached_pattern_is_causal_and_each_row_sums_to_one()
    {
        using var model = SmallModel();
        using var _ = no_grad();
        var (logits, cache) = model.RunWithCache(Tokens(1, 10), n => n.EndsWith("hook_pattern", StringComparison.Ordinal));
        using (logits) using (cache)
        using (var scope = NewDisposeScope())
        {
            var pattern = cache["pattern", 1]; // [batch, head, query, key]
            Assert.Equal([1L, 4, 10, 10], pattern.shape);
            Assert.True((pattern.sum(-1) - 1).abs().max().item<float>() < 1e-5f);
            Assert.Equal(0f, pattern.triu(1).abs().max().item<float>());
        }
    }

    [Fact]
    public void A_cached_q_holds_only_its_own_elements()
    {
        using var model = SmallModel();
        using var _ = no_grad();
        var (logits, cache) = model.RunWithCache(Tokens(), ["blocks.0.attn.hook_q"]);
        using (logits) using (cache)
        {
            var q = cache["blocks.0.attn.hook_q"];
            // A view into a fused q/k/v product would keep three times as many elements alive.
            Assert.Equal(q.NumberOfElements, q.storage<float>().Count);
        }
    }

    [Fact]
    public void A_hook_can_carry_an_activation_taken_out_of_its_block_into_a_later_block()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = Tokens();
        Tensor? kept = null;
        // Adding block 0's output again at block 1's output: possible only because the first hook took ownership of it.
        var patched = model.RunWithHooks(tokens,
        [
            ("blocks.0.hook_resid_post", (a, _) => { kept = a.detach().DetachFromDisposeScope(); return null; }),
            ("blocks.1.hook_resid_post", (a, _) => a + kept!),
        ]);
        using var keptResid = kept!;
        var (plain, cache) = model.RunWithCache(tokens, ["blocks.0.hook_resid_post"]);
        using (cache)
        {
            Assert.True((keptResid - cache["blocks.0.hook_resid_post"]).abs().max().item<float>() == 0);
            Assert.True((patched - plain).abs().max().item<float>() > 1e-3f);
        }
    }

    [Fact]
    public void An_edit_to_W_Q_changes_the_next_forward()
    {
        using var model = SmallModel();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var tokens = Tokens();
        var before = model.Run(tokens);
        model.blocks[0].attn.W_Q.mul_(2);
        var after = model.Run(tokens);
        Assert.True((before - after).abs().max().item<float>() > 1e-4f);
    }
}
