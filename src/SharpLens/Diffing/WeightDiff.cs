using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>How one parameter moved: ‖ΔW‖_F, ‖W_base‖_F, their ratio (the relative change) and the cosine of the flattened weights.</summary>
public sealed record ParameterChange(string Name, string Component, long[] Shape, double DeltaNorm, double BaseNorm, double RelativeChange, double Cosine);

/// <summary>A component's change: √Σ‖ΔW‖² / √Σ‖W_base‖² over its parameters.</summary>
public sealed record ComponentChange(string Component, double DeltaNorm, double BaseNorm, double RelativeChange, int Parameters);

/// <summary>One attention head's change, over its slices of W_Q, W_K, W_V, W_O and their biases.</summary>
public sealed record HeadChange(int Layer, int Head, double DeltaNorm, double BaseNorm, double RelativeChange);

/// <summary>
/// Weight diffs: per parameter the relative change ‖W_ft − W_base‖_F / ‖W_base‖_F, then ranked by component (blocks.L.attn,
/// blocks.L.mlp, blocks.L.ln1, embed, unembed, …) and by attention head (TransformerLens's per-head layout makes a head a slice).
/// </summary>
public sealed record WeightDiff(IReadOnlyList<ParameterChange> Parameters, IReadOnlyList<ComponentChange> Components, IReadOnlyList<HeadChange> Heads)
{
    public static WeightDiff Of(HookedTransformer baseModel, HookedTransformer finetuned, string baseName = "the base model", string finetunedName = "the fine-tune")
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var a = baseModel.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var b = finetuned.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        var missing = a.Keys.Except(b.Keys).Concat(b.Keys.Except(a.Keys)).ToList();
        if (missing.Count > 0)
            throw new DiffingException($"{baseName} and {finetunedName} have different parameters ({string.Join(", ", missing.Take(5).Select(n => $"{n} only in {(a.ContainsKey(n) ? baseName : finetunedName)}"))}); weight diffs compare models of one architecture.");
        var parameters = new List<ParameterChange>();
        var heads = new Dictionary<(int, int), (double Delta, double Base)>();
        foreach (var (name, wa) in a)
        {
            var wb = b[name];
            if (!wa.shape.SequenceEqual(wb.shape))
                throw new DiffingException($"{name} is {ShapeText.Of(wa.shape)} in {baseName} but {ShapeText.Of(wb.shape)} in {finetunedName}; weight diffs compare models of one shape.");
            var (x, y) = (wa.to(ScalarType.Float64), wb.to(ScalarType.Float64));
            var delta = y - x;
            double dn = delta.norm().item<double>(), bn = x.norm().item<double>();
            double cosine = (x * y).sum().item<double>() / Math.Max(1e-300, bn * y.norm().item<double>());
            parameters.Add(new ParameterChange(name, ComponentOf(name), wa.shape, dn, bn, dn / Math.Max(bn, 1e-300), cosine));
            // Per-head parameters: blocks.L.attn.{W_Q, W_K, W_V, W_O, b_Q, b_K, b_V} with the head first.
            var parts = name.Split('.');
            if (parts.Length == 4 && parts[0] == "blocks" && parts[2] == "attn" && parts[3] is "W_Q" or "W_K" or "W_V" or "W_O" or "b_Q" or "b_K" or "b_V"
                && int.TryParse(parts[1], out int layer) && wa.shape[0] == baseModel.Config.NHeads)
            {
                var dHead = delta.flatten(1).pow(2).sum(1); // [n_heads]
                var bHead = x.flatten(1).pow(2).sum(1); // [n_heads]
                for (int h = 0; h < wa.shape[0]; h++)
                {
                    var (d0, b0) = heads.GetValueOrDefault((layer, h));
                    heads[(layer, h)] = (d0 + dHead[h].item<double>(), b0 + bHead[h].item<double>());
                }
            }
        }
        var components = parameters.GroupBy(p => p.Component).Select(g =>
        {
            double dn = Math.Sqrt(g.Sum(p => p.DeltaNorm * p.DeltaNorm)), bn = Math.Sqrt(g.Sum(p => p.BaseNorm * p.BaseNorm));
            return new ComponentChange(g.Key, dn, bn, dn / Math.Max(bn, 1e-300), g.Count());
        }).OrderByDescending(c => c.RelativeChange).ThenBy(c => c.Component, StringComparer.Ordinal).ToList();
        var headChanges = heads.Select(kv => new HeadChange(kv.Key.Item1, kv.Key.Item2, Math.Sqrt(kv.Value.Delta), Math.Sqrt(kv.Value.Base),
            Math.Sqrt(kv.Value.Delta) / Math.Max(Math.Sqrt(kv.Value.Base), 1e-300))).OrderByDescending(h => h.RelativeChange).ToList();
        return new WeightDiff([.. parameters.OrderByDescending(p => p.RelativeChange)], components, headChanges);
    }

    /// <summary>blocks.L.attn / blocks.L.mlp / blocks.L.ln1 for a block's parameter; the first name part (embed, pos_embed, unembed, ln_final) otherwise.</summary>
    public static string ComponentOf(string parameter)
    {
        var parts = parameter.Split('.');
        return parts.Length >= 3 && parts[0] == "blocks" ? $"{parts[0]}.{parts[1]}.{parts[2]}" : parts[0];
    }
}
