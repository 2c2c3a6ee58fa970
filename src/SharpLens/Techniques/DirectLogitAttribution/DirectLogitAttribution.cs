using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>How far each named component pushes the logit direction: [component, batch] at one position.</summary>
public sealed record LogitAttribution(IReadOnlyList<string> Names, double[,] Values)
{
    /// <summary>Sum over components for one sequence: equals the model's logit difference for a decomposition.</summary>
    public double Total(int batch = 0) => Enumerable.Range(0, Names.Count).Sum(c => Values[c, batch]);

    /// <summary>Component values of one sequence.</summary>
    public double[] For(int batch = 0) => [.. Enumerable.Range(0, Names.Count).Select(c => Values[c, batch])];
}

/// <summary>
/// Direct logit attribution: the final residual stream is a sum of what each component wrote, and the final norm
/// (with its scale frozen at the value cached in <c>ln_final.hook_scale</c>) and the unembedding are then linear, so
/// each component's share of a logit difference is its centred vector / scale, times w, dotted with
/// W_U[:, answer] − W_U[:, wrong], as TransformerLens's <c>apply_ln_to_stack</c> and
/// <c>residual_stack_to_logit_diff</c> do. The constant terms (ln_final.b and b_U) are components of their own, so
/// a decomposition sums to the logit difference exactly.
/// </summary>
public static class DirectLogitAttribution
{
    /// <summary>The hooks <see cref="DecomposedResidual"/>, <see cref="PerHeadResidual"/> and <see cref="AccumulatedResidual"/> read.</summary>
    public static IReadOnlyList<string> HookNames(HookedTransformer model)
    {
        var names = new List<string> { "hook_embed" };
        if (model.pos_embed is not null) names.Add("hook_pos_embed");
        for (int l = 0; l < model.Config.NLayers; l++)
        {
            names.Add(ActivationCache.ActName("resid_pre", l));
            names.Add(ActivationCache.ActName("attn_out", l));
            names.Add(ActivationCache.ActName("z", l));
            if (!model.Config.AttnOnly) names.Add(ActivationCache.ActName("mlp_out", l));
        }
        names.Add(ActivationCache.ActName("resid_post", model.Config.NLayers - 1));
        if (model.Config.FinalNormalization != Normalization.None) names.Add("ln_final.hook_scale");
        return names;
    }

    /// <summary>Runs the model and caches what DLA needs.</summary>
    public static (Tensor Logits, ActivationCache Cache) RunWithCache(HookedTransformer model, Tensor tokens, Tensor? attentionMask = null)
    {
        using var _ = no_grad();
        return model.RunWithCache(tokens, HookNames(model), attentionMask);
    }

    /// <summary>embed, pos_embed, then each layer's attn_out and mlp_out: they sum to the final residual stream.</summary>
    public static ResidualStack DecomposedResidual(HookedTransformer model, ActivationCache cache)
    {
        var names = new List<string> { "embed" };
        var parts = new List<Tensor> { cache["hook_embed"] };
        if (model.pos_embed is not null) { names.Add("pos_embed"); parts.Add(cache["hook_pos_embed"]); }
        for (int l = 0; l < model.Config.NLayers; l++)
        {
            names.Add($"{l}_attn_out"); parts.Add(cache["attn_out", l]);
            if (!model.Config.AttnOnly) { names.Add($"{l}_mlp_out"); parts.Add(cache["mlp_out", l]); }
        }
        return new ResidualStack(names, stack(parts)); // [component, batch, pos, d_model]
    }

    /// <summary>
    /// As <see cref="DecomposedResidual"/>, with each attention layer split into its heads, z[h] W_O[h], and its
    /// output bias b_O (named "L.b_O").
    /// </summary>
    public static ResidualStack PerHeadResidual(HookedTransformer model, ActivationCache cache)
    {
        using var scope = NewDisposeScope();
        var names = new List<string> { "embed" };
        var parts = new List<Tensor> { cache["hook_embed"] };
        if (model.pos_embed is not null) { names.Add("pos_embed"); parts.Add(cache["hook_pos_embed"]); }
        var shape = cache["hook_embed"].shape;
        for (int l = 0; l < model.Config.NLayers; l++)
        {
            var attn = model.blocks[l].attn;
            var heads = einsum("bphd,hdm->hbpm", cache["z", l], attn.W_O.detach()); // [head, batch, pos, d_model]
            for (int h = 0; h < model.Config.NHeads; h++) { names.Add($"L{l}H{h}"); parts.Add(heads[h]); }
            names.Add($"{l}_b_O"); parts.Add(attn.b_O.detach().expand(shape));
            if (!model.Config.AttnOnly) { names.Add($"{l}_mlp_out"); parts.Add(cache["mlp_out", l]); }
        }
        return new ResidualStack(names, stack(parts).MoveToOuterDisposeScope()); // [component, batch, pos, d_model]
    }

    /// <summary>The residual stream before each layer, and the final one: resid_pre 0 … n_layers − 1, then final resid_post.</summary>
    public static ResidualStack AccumulatedResidual(HookedTransformer model, ActivationCache cache)
    {
        int layers = model.Config.NLayers;
        var names = Enumerable.Range(0, layers).Select(l => $"{l}_pre").Append("final_post").ToList();
        var parts = Enumerable.Range(0, layers).Select(l => cache["resid_pre", l]).Append(cache["resid_post", layers - 1]).ToList();
        return new ResidualStack(names, stack(parts)); // [component, batch, pos, d_model]
    }

    /// <summary>
    /// The final norm applied to each piece separately with the scale cached from the real run: centred and divided by
    /// ln_final.hook_scale (LN, LNPre), or left as it is (None). LN's w and b are not applied here (see <see cref="Project"/>).
    /// </summary>
    /// <param name="components">[component, batch, pos, d_model]</param>
    public static Tensor ApplyLnToStack(HookedTransformer model, Tensor components, ActivationCache cache)
    {
        if (model.Config.FinalNormalization == Normalization.None) return components;
        if (!cache.TryGetValue("ln_final.hook_scale", out var scale))
            throw new HookNotFoundException("ln_final.hook_scale", cache.Keys);
        var centred = components - components.mean([-1], keepdim: true);
        return centred / scale.unsqueeze(0); // [component, batch, pos, d_model] / [1, batch, pos, 1]
    }

    /// <summary>W_U[:, answer] − W_U[:, wrong] per sequence: [batch, d_model].</summary>
    /// <param name="answers">[batch] token ids</param>
    /// <param name="wrongs">[batch] token ids</param>
    public static Tensor LogitDiffDirections(HookedTransformer model, Tensor answers, Tensor wrongs)
    {
        var W_U = model.unembed.W_U.detach();
        return W_U.index_select(1, answers.to(ScalarType.Int64).to(W_U.device)).t() - W_U.index_select(1, wrongs.to(ScalarType.Int64).to(W_U.device)).t(); // [batch, d_model]
    }

    /// <summary>
    /// Each component's contribution at one position (negative counts from the end) to answer − wrong logits. The
    /// components are normed with the cached scale; LN's w multiplies the direction, and the constant terms
    /// (ln_final.b · direction, b_U[answer] − b_U[wrong]) come last as "ln_final.b" and "b_U".
    /// </summary>
    public static LogitAttribution Project(HookedTransformer model, ResidualStack stack, ActivationCache cache,
        Tensor answers, Tensor wrongs, int position = -1, bool includeConstants = true)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        answers = answers.dim() == 0 ? answers.unsqueeze(0) : answers;
        wrongs = wrongs.dim() == 0 ? wrongs.unsqueeze(0) : wrongs;
        var normed = ApplyLnToStack(model, stack.Components, cache); // [component, batch, pos, d_model]
        long pos = normed.shape[2];
        long p = position < 0 ? pos + position : position;
        if (p < 0 || p >= pos) throw new ArgumentOutOfRangeException(nameof(position), $"position {position} is outside the {pos} cached positions.");
        var atPosition = normed.select(2, p); // [component, batch, d_model]
        var direction = LogitDiffDirections(model, answers, wrongs); // [batch, d_model]
        var w = model.ln_final.w?.detach();
        var scaled = w is null ? direction : direction * w; // [batch, d_model]
        var values = (atPosition * scaled.unsqueeze(0)).sum(-1); // [component, batch]

        var names = new List<string>(stack.Names);
        if (includeConstants)
        {
            var constants = new List<Tensor>();
            if (model.ln_final.b is { } b) { names.Add("ln_final.b"); constants.Add((direction * b.detach()).sum(-1)); }
            var b_U = model.unembed.b_U.detach();
            names.Add("b_U");
            constants.Add(b_U.index_select(0, answers.to(ScalarType.Int64).to(b_U.device)) - b_U.index_select(0, wrongs.to(ScalarType.Int64).to(b_U.device)));
            values = cat([values, torch.stack(constants)], 0); // [component + constants, batch]
        }
        var data = values.to(ScalarType.Float64).cpu();
        int rows = (int)data.shape[0], cols = (int)data.shape[1];
        var flat = data.data<double>().ToArray();
        var grid = new double[rows, cols];
        Buffer.BlockCopy(flat, 0, grid, 0, flat.Length * sizeof(double));
        return new LogitAttribution(names, grid);
    }

    /// <summary>The logit difference answer − wrong the model itself gives at a position: [batch].</summary>
    public static double[] LogitDifference(Tensor logits, Tensor answers, Tensor wrongs, int position = -1)
    {
        using var scope = NewDisposeScope();
        answers = answers.dim() == 0 ? answers.unsqueeze(0) : answers;
        wrongs = wrongs.dim() == 0 ? wrongs.unsqueeze(0) : wrongs;
        long pos = logits.shape[1];
        var last = logits.select(1, position < 0 ? pos + position : position); // [batch, d_vocab]
        var a = last.gather(1, answers.to(ScalarType.Int64).to(last.device).unsqueeze(1));
        var w = last.gather(1, wrongs.to(ScalarType.Int64).to(last.device).unsqueeze(1));
        return [.. (a - w).squeeze(1).to(ScalarType.Float64).cpu().data<double>()];
    }
}
