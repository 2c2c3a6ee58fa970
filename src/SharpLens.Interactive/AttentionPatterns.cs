using SharpLens.Hooks;
using SharpLens.Reports;
using static TorchSharp.torch;
using static SharpLens.Interactive.Inline;

namespace SharpLens.Interactive;

/// <summary>
/// Attention patterns of one layer's heads on one sequence, shown as a heatmap per head (query ↓, key →), with the
/// tokens along both axes — CircuitsVis's <c>attention_patterns</c> view, drawn as static inline SVG.
/// <code>
/// var (logits, cache) = model.RunWithCache(tokens, name => name.EndsWith("hook_pattern"));
/// AttentionPatterns.FromCache(cache, layer: 1, tokens: ["A", "B", "C", "A", "B"])   // displays itself in a notebook
/// </code>
/// </summary>
/// <param name="Title">What the patterns are ("layer 1").</param>
/// <param name="Tokens">One label per position (shown after the position; empty for positions only).</param>
/// <param name="Patterns">Per head, a [query, key] pattern.</param>
public sealed record AttentionPatterns(string Title, IReadOnlyList<string> Tokens, IReadOnlyList<(string Head, float[,] Pattern)> Patterns)
{
    /// <summary>From a pattern tensor [head, query, key] or [batch, head, query, key] (sequence <paramref name="batch"/>).</summary>
    public static AttentionPatterns FromTensor(Tensor pattern, IReadOnlyList<string>? tokens = null, string title = "attention patterns", int batch = 0)
    {
        using var scope = NewDisposeScope();
        var p = pattern.detach();
        if (p.dim() == 4) p = p[batch];
        if (p.dim() == 2) p = p.unsqueeze(0);
        if (p.dim() != 3 || p.shape[1] != p.shape[2])
            throw new SharpLensException($"An attention pattern is [head, query_pos, key_pos] or [batch, head, query_pos, key_pos]; got {ShapeText.Of(pattern.shape)}. " +
                "Pass cache[\"pattern\", layer] (blocks.{layer}.attn.hook_pattern).");
        int heads = (int)p.shape[0], pos = (int)p.shape[1];
        tokens ??= [.. Enumerable.Repeat("", pos)]; // positions only
        if (tokens.Count != pos)
            throw new SharpLensException($"The pattern covers {pos} positions but {tokens.Count} token labels were given; pass one label per position.");
        var values = p.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var patterns = new List<(string, float[,])>();
        for (int h = 0; h < heads; h++)
        {
            var grid = new float[pos, pos];
            for (int q = 0; q < pos; q++) for (int k = 0; k < pos; k++) grid[q, k] = values[(h * pos + q) * pos + k];
            patterns.Add(($"head {h}", grid));
        }
        return new AttentionPatterns(title, tokens, patterns);
    }

    /// <summary>Layer <paramref name="layer"/>'s patterns from a cache that holds <c>blocks.{layer}.attn.hook_pattern</c>.</summary>
    public static AttentionPatterns FromCache(ActivationCache cache, int layer, IReadOnlyList<string>? tokens = null, int batch = 0)
    {
        string name = ActivationCache.ActName("pattern", layer);
        if (!cache.ContainsKey(name))
            throw new SharpLensException($"The cache holds no {name}; run RunWithCache with a filter that keeps it (name => name.EndsWith(\"hook_pattern\")).");
        return FromTensor(cache[name], tokens, $"layer {layer} attention patterns ({name})", batch);
    }

    public string ToHtml()
    {
        var labels = Tokens.Select((t, i) => $"{i} {t}".TrimEnd()).ToList();
        int cell = Tokens.Count <= 16 ? 18 : Tokens.Count <= 40 ? 10 : 6;
        return Fragment(Title, Gallery(Patterns.Select(p =>
            (p.Head, Svg.Heatmap(p.Pattern, labels, labels, "query", "key", min: 0, max: 1, cell: cell))))
            + "<div class=\"sl-note\">Each row is a query position and sums to 1 over the keys it can see; hover a cell for its value.</div>");
    }
}
