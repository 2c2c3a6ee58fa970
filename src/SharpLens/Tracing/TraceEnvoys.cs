namespace SharpLens.Tracing;

// nnsight's Envoy tree over SharpLens's hook points: each property is one TransformerLens hook, read by getting it and
// written by setting it (or an index of it). A hook the model lacks is refused when it is named, with the closest names.

/// <summary><c>Blocks[l]</c>: block l of the model.</summary>
public readonly struct TraceBlocks(TraceScope scope)
{
    public TraceBlock this[int layer]
    {
        get
        {
            int n = scope.Owner.Layout.NLayers;
            if (layer < 0 || layer >= n)
                throw new PlanValidationException($"Blocks[{layer}]: {scope.Owner.Layout.Name} has {n} blocks (0 to {n - 1}).");
            return new TraceBlock(scope, layer);
        }
    }

    public int Count => scope.Owner.Layout.NLayers;
}

/// <summary>One block: its residual stream in and out, and its attention, MLP and norms.</summary>
public sealed class TraceBlock(TraceScope scope, int layer)
{
    string P => $"blocks.{layer}";

    /// <summary>The residual stream entering the block (hook_resid_pre).</summary>
    public TraceValue Input { get => scope[$"{P}.hook_resid_pre"]; set => scope[$"{P}.hook_resid_pre"] = value; }

    /// <summary>What the block passes on: hook_resid_post (a BERT encoder's hook_normalized_resid_post).</summary>
    public TraceValue Output { get => scope[OutputHook]; set => scope[OutputHook] = value; }

    public TraceValue ResidPre { get => scope[$"{P}.hook_resid_pre"]; set => scope[$"{P}.hook_resid_pre"] = value; }
    public TraceValue ResidMid { get => scope[$"{P}.hook_resid_mid"]; set => scope[$"{P}.hook_resid_mid"] = value; }
    public TraceValue ResidPost { get => scope[$"{P}.hook_resid_post"]; set => scope[$"{P}.hook_resid_post"] = value; }

    public TraceAttention Attn => new(scope, layer);
    public TraceMlp Mlp => new(scope, layer);
    public TraceNorm Ln1 => new(scope, $"{P}.ln1");
    public TraceNorm Ln2 => new(scope, $"{P}.ln2");

    /// <summary>A hook of this block by its name within it, e.g. "attn.hook_rot_q".</summary>
    public TraceValue this[string hook] { get => scope[$"{P}.{hook}"]; set => scope[$"{P}.{hook}"] = value; }

    string OutputHook => scope.Owner.Layout.IsEncoder ? $"{P}.hook_normalized_resid_post" : $"{P}.hook_resid_post";
}

/// <summary>A block's attention: q, k, v [batch, pos, head, d_head], scores and pattern [batch, head, q_pos, k_pos], z, result, and its output.</summary>
public sealed class TraceAttention(TraceScope scope, int layer)
{
    string P => $"blocks.{layer}.attn";

    public TraceValue Q { get => scope[$"{P}.hook_q"]; set => scope[$"{P}.hook_q"] = value; }
    public TraceValue K { get => scope[$"{P}.hook_k"]; set => scope[$"{P}.hook_k"] = value; }
    public TraceValue V { get => scope[$"{P}.hook_v"]; set => scope[$"{P}.hook_v"] = value; }
    public TraceValue Scores { get => scope[$"{P}.hook_attn_scores"]; set => scope[$"{P}.hook_attn_scores"] = value; }
    public TraceValue Pattern { get => scope[$"{P}.hook_pattern"]; set => scope[$"{P}.hook_pattern"] = value; }
    public TraceValue Z { get => scope[$"{P}.hook_z"]; set => scope[$"{P}.hook_z"] = value; }
    /// <summary>Per-head outputs [batch, pos, head, d_model] (models with use_attn_result).</summary>
    public TraceValue Result { get => scope[$"{P}.hook_result"]; set => scope[$"{P}.hook_result"] = value; }
    /// <summary>The attention's output added to the residual stream (the block's hook_attn_out).</summary>
    public TraceValue Output { get => scope[$"blocks.{layer}.hook_attn_out"]; set => scope[$"blocks.{layer}.hook_attn_out"] = value; }
}

/// <summary>A block's MLP: pre- and post-activation neurons [batch, pos, d_mlp] and its output.</summary>
public sealed class TraceMlp(TraceScope scope, int layer)
{
    string P => $"blocks.{layer}.mlp";

    public TraceValue Pre { get => scope[$"{P}.hook_pre"]; set => scope[$"{P}.hook_pre"] = value; }
    public TraceValue Post { get => scope[$"{P}.hook_post"]; set => scope[$"{P}.hook_post"] = value; }
    /// <summary>The MLP's output added to the residual stream (the block's hook_mlp_out).</summary>
    public TraceValue Output { get => scope[$"blocks.{layer}.hook_mlp_out"]; set => scope[$"blocks.{layer}.hook_mlp_out"] = value; }
}

/// <summary>A norm's hooks: the scale it divides by and the normalised result.</summary>
public sealed class TraceNorm(TraceScope scope, string prefix)
{
    public TraceValue Scale { get => scope[$"{prefix}.hook_scale"]; set => scope[$"{prefix}.hook_scale"] = value; }
    public TraceValue Normalized { get => scope[$"{prefix}.hook_normalized"]; set => scope[$"{prefix}.hook_normalized"] = value; }
}
