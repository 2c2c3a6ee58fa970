using SharpLens.Models.Components;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>BERT's segment embedding: row s of W_token_type is added to every token of segment s (sentence A = 0, B = 1).</summary>
public sealed class TokenTypeEmbed : nn.Module
{
    public const int TokenTypes = 2;
    public Parameter W_token_type; // [2, d_model]

    public TokenTypeEmbed(ModelConfig cfg) : base("token_type_embed")
    {
        W_token_type = new Parameter(ParameterAllocation.Empty(TokenTypes, cfg.DModel));
        RegisterComponents();
    }

    public Tensor Forward(Tensor tokenTypeIds) => // [batch, pos]
        W_token_type.index_select(0, tokenTypeIds.flatten()).view([.. tokenTypeIds.shape, -1]); // [batch, pos, d_model]
}
