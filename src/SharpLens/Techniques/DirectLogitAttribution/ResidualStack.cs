using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>
/// Pieces of the residual stream with their names: <see cref="Components"/> is [component, batch, pos, d_model].
/// Owns its tensor.
/// </summary>
public sealed class ResidualStack(IReadOnlyList<string> names, Tensor components) : IDisposable
{
    public IReadOnlyList<string> Names { get; } = names;
    /// <summary>[component, batch, pos, d_model]</summary>
    public Tensor Components { get; } = components;

    public void Dispose() => Components.Dispose();
}
