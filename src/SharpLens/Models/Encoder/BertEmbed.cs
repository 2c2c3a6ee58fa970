using TorchSharp;
using SharpLens.Hooks;
using SharpLens.Models.Components;
using LayerNorm = SharpLens.Models.Components.LayerNorm;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>
/// BERT's embedding: ln(W_E[token] + W_pos[position] + W_token_type[segment]), as TransformerLens's BertEmbed.
/// Positions count from 0 at the first token: BERT pads on the right, so padding never shifts them.
/// </summary>
public sealed class BertEmbed : nn.Module
{
    public Embed embed;
    public PosEmbed pos_embed;
    public TokenTypeEmbed token_type_embed;
    public LayerNorm ln;
    readonly HookPoint hook_embed, hook_pos_embed, hook_token_type_embed;

    public BertEmbed(ModelConfig cfg, HookPointSet hooks) : base("embed")
    {
        embed = new Embed(cfg);
        pos_embed = new PosEmbed(cfg);
        token_type_embed = new TokenTypeEmbed(cfg);
        hook_embed = hooks.Create("embed.hook_embed");
        hook_pos_embed = hooks.Create("embed.hook_pos_embed");
        hook_token_type_embed = hooks.Create("embed.hook_token_type_embed");
        ln = new LayerNorm(cfg, Normalization.LN, "embed.ln", hooks);
        RegisterComponents();
    }

    public Tensor Forward(Tensor tokens, Tensor tokenTypeIds) // tokens, tokenTypeIds: [batch, pos]
    {
        using Scalar length = tokens.shape[1]; // held (see HeldScalars)
        var positions = torch.arange(length, device: tokens.device).expand(tokens.shape[0], -1); // [batch, pos]
        var words = hook_embed.Apply(embed.Forward(tokens));                                  // [batch, pos, d_model]
        var place = hook_pos_embed.Apply(pos_embed.Forward(positions));                      // [batch, pos, d_model]
        var segment = hook_token_type_embed.Apply(token_type_embed.Forward(tokenTypeIds));   // [batch, pos, d_model]
        return ln.Forward(words.Plus(place).Plus(segment)); // Plus: see HeldScalars
    }
}
