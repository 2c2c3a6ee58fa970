using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>Token embedding: row t of W_E is the vector for token t.</summary>
public sealed class Embed : nn.Module
{
    public Parameter W_E; // [d_vocab, d_model]

    public Embed(ModelConfig cfg) : base("embed")
    {
        W_E = new Parameter(ParameterAllocation.Empty(cfg.DVocab, cfg.DModel));
        RegisterComponents();
    }

    public Tensor Forward(Tensor tokens) => W_E.index_select(0, tokens.flatten()).view([.. tokens.shape, -1]); // [batch, pos, d_model]
}

/// <summary>Learned positional embedding: row p of W_pos is added at position p.</summary>
public sealed class PosEmbed : nn.Module
{
    public Parameter W_pos; // [n_ctx, d_model]

    public PosEmbed(ModelConfig cfg) : base("pos_embed")
    {
        W_pos = new Parameter(ParameterAllocation.Empty(cfg.NCtx, cfg.DModel));
        RegisterComponents();
    }

    /// <param name="positions">[batch, pos] position of each token (padding shifts them), or [pos].</param>
    public Tensor Forward(Tensor positions) => W_pos.index_select(0, positions.flatten()).view([.. positions.shape, -1]); // [batch, pos, d_model]
}

/// <summary>Unembedding: logits = x W_U + b_U.</summary>
public sealed class Unembed : nn.Module
{
    public Parameter W_U; // [d_model, d_vocab]
    public Parameter b_U; // [d_vocab]

    public Unembed(ModelConfig cfg) : base("unembed")
    {
        W_U = new Parameter(ParameterAllocation.Empty(cfg.DModel, cfg.DVocab));
        b_U = new Parameter(ParameterAllocation.Zeros(cfg.DVocab));
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => Affine.Apply(x, W_U, b_U); // [batch, pos, d_model] → [batch, pos, d_vocab]
}
