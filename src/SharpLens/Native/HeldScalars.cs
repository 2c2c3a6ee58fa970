using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens;

/// <summary>
/// Scalars that live as long as the process, for the tensor arithmetic of code that may run while other threads use
/// torch (two trainings at once, a server's model lanes, test classes in parallel).
/// </summary>
/// <remarks>
/// TorchSharp 0.107 hands libtorch a <see cref="Scalar"/>'s native pointer without keeping the managed Scalar alive
/// through the call, and Scalars belong to no dispose scope. So a temporary one — every <c>tensor + tensor</c> passes
/// alpha = 1, every <c>t.mul_(0.9)</c> converts 0.9 — can be finalized, and its native value freed, by a garbage
/// collection that another thread starts while libtorch is still reading it: the process then fails with "Unknown
/// scalar type." or "Expected false to be true" from <c>c10::Scalar</c> (both seen with two trainings at once). Code
/// on those paths uses these, or a Scalar held with <c>using</c> until the operation has returned.
/// <c>ConcurrentTrainingTests</c> trains beside a thread that collects garbage without pause, which finds such a Scalar.
/// </remarks>
public static class HeldScalars
{
    public static readonly Scalar Zero = 0, One = 1, Two = 2;

    /// <summary><c>a + b</c> with a held alpha of 1 (TorchSharp's <c>+</c> makes a temporary one).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);
}
