using SharpLens.Models;
using SharpLens.Tokenization;
using static TorchSharp.torch;

namespace SharpLens.Tests.Models;

public class PaddingTests
{
    static readonly int[][] Prompts = [[5, 17, 3], [9, 2, 44, 8, 31, 7, 12], [1, 40, 6, 6, 22]];

    static HookedTransformer SmallModel()
    {
        var model = new HookedTransformer(new ModelConfig
        {
            DModel = 32, NLayers = 2, NHeads = 4, DHead = 8, DMlp = 64, DVocab = 50, NCtx = 16,
        }, seed: 11);
        RandomizeNormsAndBiases(model, seed: 12);
        return model;
    }

    /// <summary>Gives every LayerNorm weight and bias and every bias non-trivial values (the default init leaves them 1 and 0).</summary>
    internal static void RandomizeNormsAndBiases(HookedTransformer model, long seed)
    {
        using var _ = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            if (leaf == "w") p.copy_(1 + 0.5 * randn(p.shape, generator: generator));
            else if (leaf == "b" || leaf.StartsWith("b_", StringComparison.Ordinal)) p.copy_(0.3 * randn(p.shape, generator: generator));
        }
    }

    /// <summary>Largest gap between each prompt's logits alone and its rows of the padded batch.</summary>
    static double WorstGapToAlone(HookedTransformer model, PaddingSide side, Func<Tensor, Tensor?, Tensor> run)
    {
        var (tokens, mask) = TokenBatch.Pad(Prompts, padTokenId: 0, side);
        var batch = run(tokens, mask);
        double worst = 0;
        for (int b = 0; b < Prompts.Length; b++)
        {
            int n = Prompts[b].Length, start = side == PaddingSide.Left ? (int)tokens.shape[1] - n : 0;
            var alone = run(tensor(Prompts[b].Select(i => (long)i).ToArray()).unsqueeze(0), null)[0]; // [pos, d_vocab]
            worst = Math.Max(worst, (batch[b, start..(start + n)] - alone).abs().max().item<float>());
        }
        return worst;
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Padded_batch_gives_each_prompt_the_logits_it_gives_alone(PaddingSide side)
    {
        using var scope = NewDisposeScope();
        var model = SmallModel();
        double gap = WorstGapToAlone(model, side, (t, m) => model.Run(t, m));
        Assert.True(gap < 1e-5, $"{side} padding: logits differ from the prompt alone by {gap}");
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Padded_batch_matches_alone_on_the_explicit_softmax_path_too(PaddingSide side)
    {
        using var scope = NewDisposeScope();
        var model = SmallModel();
        // A hook on the pattern makes attention compute scores and softmax itself instead of the fused kernel.
        (string, SharpLens.Hooks.HookFunction)[] hooks = [("blocks.0.attn.hook_pattern", (x, _) => null), ("blocks.1.attn.hook_pattern", (x, _) => null)];
        double gap = WorstGapToAlone(model, side, (t, m) => model.RunWithHooks(t, hooks, m));
        Assert.True(gap < 1e-5, $"{side} padding, explicit softmax: logits differ from the prompt alone by {gap}");
    }

    [Theory]
    [InlineData(PaddingSide.Right)]
    [InlineData(PaddingSide.Left)]
    public void Loss_of_a_padded_batch_counts_each_prompts_own_predictions(PaddingSide side)
    {
        using var scope = NewDisposeScope();
        var model = SmallModel();
        var (tokens, mask) = TokenBatch.Pad(Prompts, padTokenId: 0, side);
        var perToken = HookedTransformer.LossPerToken(model.Run(tokens, mask), tokens, mask); // [batch, pos-1]
        Assert.Equal([3L, 6], perToken.shape);

        double sum = 0;
        int count = 0;
        for (int b = 0; b < Prompts.Length; b++)
        {
            int n = Prompts[b].Length, start = side == PaddingSide.Left ? 7 - n : 0;
            var promptTokens = tensor(Prompts[b].Select(i => (long)i).ToArray()).unsqueeze(0);
            var alone = HookedTransformer.LossPerToken(model.Run(promptTokens), promptTokens)[0]; // [n-1]
            var rows = perToken[b];
            Assert.True((rows[start..(start + n - 1)] - alone).abs().max().item<float>() < 1e-5);
            // Predictions from or of a padding position do not count.
            Assert.Equal(0f, rows.sum().item<float>() - rows[start..(start + n - 1)].sum().item<float>(), 5);
            sum += alone.sum().item<float>();
            count += n - 1;
        }
        double mean = HookedTransformer.Loss(model.Run(tokens, mask), tokens, mask).item<float>();
        Assert.Equal(sum / count, mean, 5);
    }

    [Fact]
    public void LossPerToken_is_minus_log_softmax_of_the_next_token()
    {
        using var scope = NewDisposeScope();
        var logits = tensor(new float[] { 1, 2, 0.5f, -1, 0, 3, 2, 2, 2 }).reshape(1, 3, 3); // [batch, pos, d_vocab]
        var tokens = tensor(new long[] { 0, 2, 1 }).unsqueeze(0);
        // Position 0 predicts token 2 from logits (1, 2, 0.5); position 1 predicts token 1 from (−1, 0, 3).
        double Expected(double[] l, int t) => -(l[t] - Math.Log(l.Sum(Math.Exp)));
        var loss = HookedTransformer.LossPerToken(logits, tokens).data<float>().ToArray();
        Assert.Equal(Expected([1, 2, 0.5], 2), loss[0], 5);
        Assert.Equal(Expected([-1, 0, 3], 1), loss[1], 5);
        Assert.Equal((loss[0] + loss[1]) / 2, HookedTransformer.Loss(logits, tokens).item<float>(), 5);
    }
}
