using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

public class GenerationTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && (a == b).all().item<bool>();

    [Fact]
    public void Greedy_generation_is_deterministic_and_takes_the_argmax_at_each_step()
    {
        using var model = TestModels.RandomModel();
        var prompt = TestModels.RandomTokens(2, 5, model.Config.DVocab);
        using var _ = no_grad();
        var a = model.Generate(prompt, 6, temperature: 0, seed: 1);
        var b = model.Generate(prompt, 6, temperature: 0, seed: 2);
        Assert.Equal(new long[] { 2, 11 }, a.shape);
        Assert.True(Same(a, b));
        Assert.True(Same(a[.., ..5], prompt));

        var sequence = prompt;
        for (int step = 0; step < 6; step++)
            sequence = cat([sequence, model.Run(sequence)[.., -1].argmax(-1, keepdim: true)], 1);
        Assert.True(Same(a, sequence));
    }

    [Fact]
    public void Sampling_is_reproducible_by_seed_and_respects_top_k()
    {
        using var model = TestModels.RandomModel();
        var prompt = TestModels.RandomTokens(1, 3, model.Config.DVocab);
        using var _ = no_grad();
        var a = model.Generate(prompt, 8, temperature: 1.5, seed: 11);
        var b = model.Generate(prompt, 8, temperature: 1.5, seed: 11);
        Assert.True(Same(a, b));
        // top-k = 1 is greedy whatever the temperature.
        var greedy = model.Generate(prompt, 8, temperature: 0);
        Assert.True(Same(model.Generate(prompt, 8, temperature: 2, topK: 1, seed: 3), greedy));
        // A tiny top-p keeps only the most likely token: greedy again.
        Assert.True(Same(model.Generate(prompt, 8, temperature: 1, topP: 1e-6, seed: 3), greedy));
        // Different seeds sample different continuations at a high temperature.
        Assert.False(Same(a, model.Generate(prompt, 8, temperature: 1.5, seed: 12)));
    }

    [Fact]
    public void Hooks_apply_during_generation()
    {
        using var model = TestModels.RandomModel();
        var prompt = TestModels.RandomTokens(1, 4, model.Config.DVocab);
        using var _ = no_grad();
        // Forcing the unembedding input to favour token 7 makes every generated token 7.
        var W_U = model.unembed.W_U.detach();
        using (model.AddHook("blocks.1.hook_resid_post", (act, _) => act + 1000 * W_U[.., 7] / W_U[.., 7].norm()))
        {
            var generated = model.Generate(prompt, 4, temperature: 0)[0, 4..];
            Assert.True((generated == 7).all().item<bool>(), string.Join(" ", generated.data<long>().ToArray()));
        }
    }
}
