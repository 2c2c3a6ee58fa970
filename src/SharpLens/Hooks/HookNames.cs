namespace SharpLens.Hooks;

/// <summary>TransformerLens's hook names, built from a kind of activation and a layer.</summary>
public static class HookNames
{
    /// <summary>
    /// The full hook name for a kind of activation at a layer, as TransformerLens's <c>utils.get_act_name</c> builds it:
    /// ("resid_pre", 3) → "blocks.3.hook_resid_pre"; ("pattern", 0) → "blocks.0.attn.hook_pattern";
    /// ("post", 1) → "blocks.1.mlp.hook_post"; ("scale", 2, "ln1") → "blocks.2.ln1.hook_scale".
    /// </summary>
    public static string GetActName(string kind, int? layer = null, string? sublayer = null)
    {
        kind = kind switch { "attn" => "pattern", "attn_logits" => "attn_scores", _ => kind };
        if (kind is "embed" or "pos_embed") return $"hook_{kind}";
        if (layer is null)
        {
            if (kind is "scale" or "normalized" && (sublayer ?? "ln_final") == "ln_final") return $"ln_final.hook_{kind}";
            throw new ArgumentException($"Activation kind '{kind}' needs a layer.", nameof(layer));
        }
        return kind switch
        {
            "resid_pre" or "resid_mid" or "resid_post" or "attn_out" or "mlp_out" => $"blocks.{layer}.hook_{kind}",
            "q" or "k" or "v" or "z" or "result" or "attn_scores" or "pattern" or "rot_q" or "rot_k" => $"blocks.{layer}.attn.hook_{kind}",
            "pre" or "post" or "mid" or "pre_linear" => $"blocks.{layer}.mlp.hook_{kind}",
            "scale" or "normalized" => $"blocks.{layer}.{sublayer ?? throw new ArgumentException($"Say which norm '{kind}' is from: ln1 or ln2.", nameof(sublayer))}.hook_{kind}",
            _ => throw new ArgumentException($"Unknown activation kind '{kind}'; use embed, pos_embed, resid_pre, resid_mid, resid_post, attn_out, mlp_out, " +
                "q, k, v, z, result, attn_scores, pattern, rot_q, rot_k, pre, post, mid, pre_linear, scale or normalized.", nameof(kind)),
        };
    }
}
