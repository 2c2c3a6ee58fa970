using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// The dtype components allocate their parameters in: float32, except while a loader builds a model whose every weight
/// it will overwrite in another dtype. Then the parameters are born in that dtype (a bf16 checkpoint loads into bf16
/// parameters with no float32 model beside them). Per thread, so two models built at once do not see each other's.
/// </summary>
/// <remarks>
/// Randomly initialised models keep allocating in float32 and convert afterwards, so a seed gives the same weights
/// (rounded) in every dtype.
/// </remarks>
static class ParameterAllocation
{
    [ThreadStatic] static ScalarType? _dtype;

    static ScalarType DType => _dtype ?? ScalarType.Float32;

    /// <summary>Allocates new parameters in <paramref name="dtype"/> until disposed (then the previous dtype again).</summary>
    public static IDisposable In(ScalarType dtype) => new Scope(dtype);

    public static Tensor Empty(params long[] shape) => torch.empty(shape, DType);
    public static Tensor Zeros(params long[] shape) => torch.zeros(shape, DType);
    public static Tensor Ones(params long[] shape) => torch.ones(shape, DType);

    sealed class Scope : IDisposable
    {
        readonly ScalarType? _previous = _dtype;
        public Scope(ScalarType dtype) => _dtype = dtype;
        public void Dispose() => _dtype = _previous;
    }
}
