using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>The per-input scale SAELens's run-time normalization applied, kept to undo it on the output.</summary>
internal sealed record InputNormalization(Tensor? Scale, Tensor? Mean, Tensor? Std)
{
    public static readonly InputNormalization Identity = new(null, null, null);

    public static InputNormalization Of(ActivationNormalization kind, Tensor x, int dIn) => kind switch
    {
        ActivationNormalization.ConstantNormRescale => new(Math.Sqrt(dIn) / x.norm(-1, keepdim: true), null, null), // [..., 1]
        ActivationNormalization.LayerNorm => LayerNormOf(x),
        _ => Identity,
    };

    static InputNormalization LayerNormOf(Tensor x)
    {
        var mean = x.mean([-1], keepdim: true); // [..., 1]
        var std = (x - mean).std(-1, unbiased: true, keepdim: true); // [..., 1]
        return new(null, mean, std);
    }

    public Tensor Apply(Tensor x) =>
        Scale is not null ? x * Scale : Mean is not null ? (x - Mean) / (Std! + 1e-5) : x;

    public Tensor Undo(Tensor y) =>
        Scale is not null ? y / Scale : Mean is not null ? y * Std! + Mean : y;
}
