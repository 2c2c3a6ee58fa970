using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// One tensor of a Hugging Face checkpoint and the parameters it holds: a line of a weight map written as data, so
/// the one list is walked both ways. Loading copies the stored tensor into each part's view of its parameter
/// (<see cref="ReadInto"/>); saving assembles the stored tensor from the same views (<see cref="Assemble"/>).
/// </summary>
/// <param name="Name">the name in the file</param>
/// <param name="Shape">its shape, as config.json implies</param>
/// <param name="Parts">the parameters it holds: each the whole tensor (a tied embedding fills W_E and W_U), or
/// consecutive blocks of its last dimension (GPT-2's c_attn: W_Q | W_K | W_V)</param>
public sealed record StoredTensor(string Name, long[] Shape, params StoredPart[] Parts)
{
    /// <summary>A LayerNorm's <c>{stored}.weight</c> and <c>.bias</c> [d_model] as <c>{parameter}.w</c> and <c>.b</c>.</summary>
    public static IEnumerable<StoredTensor> LayerNorm(string stored, string parameter, long dModel) =>
        [new($"{stored}.weight", [dModel], new StoredPart($"{parameter}.w", StoredPart.AsIs)), new($"{stored}.bias", [dModel], new StoredPart($"{parameter}.b", StoredPart.AsIs))];

    /// <summary>Copies the stored tensor into every part's parameter, straight from the file (see <see cref="HuggingFaceTensorSource.ReadInto"/>).</summary>
    public void ReadInto(HuggingFaceTensorSource tensors, ParameterWriter into)
    {
        if (Shape.Length == 2 && Parts[0].Offset is not null) // column blocks: one pass over the stored rows fills them all
        {
            into.Fill([.. Parts.Select(p => p.Parameter)], parameters =>
                tensors.ReadColumnsInto(Name, Shape, [.. Parts.Zip(parameters, (part, p) => (part.AsStored(p), part.Offset!.Value))])); // [rows, block columns ...]
            return;
        }
        foreach (var part in Parts)
            into.Fill(part.Parameter, parameter =>
            {
                var view = part.AsStored(parameter);
                if (part.Offset is not long offset) tensors.ReadInto(Name, Shape, view);
                else tensors.ReadInto(Name, Shape, view.view(-1), firstRow: offset); // a block of a 1-D tensor: [block]
            });
    }

    /// <summary>
    /// The stored tensor made from the parameters (<paramref name="parameter"/> gives one by its TransformerLens name):
    /// the first part for a whole tensor, the blocks side by side along the last dimension otherwise.
    /// </summary>
    public Tensor Assemble(Func<string, Tensor> parameter)
    {
        if (Parts[0].Offset is null) return Parts[0].AsStored(parameter(Parts[0].Parameter)).reshape(Shape);
        long[] blockShape = Shape.Length == 1 ? [-1] : [Shape[0], -1];
        var blocks = Parts.Select(p => p.AsStored(parameter(p.Parameter)).reshape(blockShape)).ToList(); // [rows, block] or [block]
        long at = 0;
        foreach (var (part, block) in Parts.Zip(blocks))
        {
            if (part.Offset != at) throw new SharpLensInternalException($"{Name}: the block of {part.Parameter} starts at {part.Offset}, not {at}, where the block before it ends.");
            at += block.shape[^1];
        }
        if (at != Shape[^1]) throw new SharpLensInternalException($"{Name}: its blocks fill {at} of {Shape[^1]} along the last dimension.");
        return torch.cat(blocks, -1);
    }
}

/// <summary>A parameter, or a block of it, inside a <see cref="StoredTensor"/>.</summary>
/// <param name="Parameter">its TransformerLens name (<c>blocks.0.attn.W_Q</c>)</param>
/// <param name="AsStored">the parameter viewed in the stored layout, writable: the stored shape, or its rows split as
/// <c>[blocks, rows, ...]</c> (heads side by side); for a block, that block's columns (their trailing dimensions may be split)</param>
/// <param name="Offset">for a block, where it starts along the stored tensor's last dimension; null for the whole tensor</param>
public sealed record StoredPart(string Parameter, Func<Tensor, Tensor> AsStored, long? Offset = null)
{
    /// <summary>Stored in our layout.</summary>
    public static Tensor AsIs(Tensor parameter) => parameter;

    /// <summary>Stored transposed: nn.Linear's [out, in] weight of our [in, out] W, an lm_head [d_vocab, d_model] of W_U.</summary>
    public static Tensor Transposed(Tensor parameter) => parameter.t();

    /// <summary>An embedding [d_vocab, d_model]: <paramref name="parameter"/>, and W_U (as W_Uᵀ) too when the unembedding is tied to it.</summary>
    public static StoredPart[] Embedding(string parameter, bool tiedToUnembed) =>
        tiedToUnembed ? [new(parameter, AsIs), new("unembed.W_U", Transposed)] : [new(parameter, AsIs)];
}
