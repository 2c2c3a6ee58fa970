using SharpLens.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens;

/// <summary>
/// Checked stand-ins for the few TorchSharp calls whose native side catches no C++ exception.
/// </summary>
/// <remarks>
/// <para>TorchSharp's glue (<c>libLibTorchSharp.so</c>) wraps almost every libtorch call in <c>try { … } catch
/// (c10::Error)</c>, stores the message, and the managed side rethrows it as an <c>ExternalException</c>. A handful of
/// its entry points have no such wrapper — in 0.107 among them <c>THSTensor_matmul</c>, <c>THSAutograd_grad</c>,
/// <c>THSTensor_cummax</c>/<c>cummin</c> and <c>THSTorch_set_num_threads</c>. When libtorch throws inside one of those
/// (a shape mismatch, an unused input, a thread count of 0), the C++ exception unwinds into the managed caller's frame,
/// which the C++ unwinder cannot walk: no handler is found and the runtime calls <c>std::terminate</c> — "terminate
/// called after throwing an instance of 'c10::Error'", the process aborts (SIGABRT) and no <c>catch</c> in C# can stop
/// it. This does not depend on the libstdc++ version: <c>torch.mm</c> of the same mismatched shapes, on the same host,
/// is an ordinary catchable <c>ExternalException</c>.</para>
/// <para>So SharpLens never calls those entry points with arguments libtorch would refuse: every call goes through
/// this class, which checks what libtorch would check and throws a <see cref="TensorOperationException"/> first.
/// The build refuses a direct call (BannedSymbols.txt); <c>NativeAbortTests</c> runs each refused case in a child
/// process and fails if it aborts.</para>
/// </remarks>
public static class UncaughtNativeCalls
{
    /// <summary>
    /// <c>torch.matmul</c> (same rules: dot, matrix-vector, matrix, batched with broadcasting), with the shapes,
    /// dtypes, devices and the result's size checked before libtorch sees them.
    /// </summary>
    /// <exception cref="TensorOperationException">The operands cannot be multiplied; the message gives both shapes.</exception>
    public static Tensor MatMul(this Tensor a, Tensor b)
    {
        CheckMatMul(a, b);
#pragma warning disable RS0030 // the one checked call
        return a.matmul(b);
#pragma warning restore RS0030
    }

    /// <summary>The shape <c>torch.matmul(a, b)</c> would have, or the reason it has none.</summary>
    internal static long[] MatMulShape(long[] a, long[] b)
    {
        if (a.Length == 0 || b.Length == 0)
            throw new TensorOperationException("matmul", $"cannot multiply {ShapeText.Of(a)} by {ShapeText.Of(b)}: both operands need at least one dimension.");
        long inner = a[^1], other = b.Length == 1 ? b[0] : b[^2];
        if (inner != other)
            throw new TensorOperationException("matmul", $"cannot multiply {ShapeText.Of(a)} by {ShapeText.Of(b)}: " +
                $"the first operand's last dimension ({inner}) differs from the second's {(b.Length == 1 ? "only" : "second-to-last")} dimension ({other}).");
        long[] batchA = a.Length > 2 ? a[..^2] : [], batchB = b.Length > 2 ? b[..^2] : [];
        var batch = new long[Math.Max(batchA.Length, batchB.Length)];
        for (int i = 1; i <= batch.Length; i++)
        {
            long x = i <= batchA.Length ? batchA[^i] : 1, y = i <= batchB.Length ? batchB[^i] : 1;
            if (x != y && x != 1 && y != 1)
                throw new TensorOperationException("matmul", $"cannot multiply {ShapeText.Of(a)} by {ShapeText.Of(b)}: " +
                    $"the batch dimensions {ShapeText.Of(batchA)} and {ShapeText.Of(batchB)} do not broadcast ({x} against {y}).");
            batch[^i] = x == 1 ? y : x;
        }
        var rows = a.Length >= 2 ? new[] { a[^2] } : [];
        var columns = b.Length >= 2 ? new[] { b[^1] } : [];
        return [.. batch, .. rows, .. columns];
    }

    static void CheckMatMul(Tensor a, Tensor b)
    {
        var shape = MatMulShape(a.shape, b.shape);
        if (a.dtype != b.dtype)
            throw new TensorOperationException("matmul", $"cannot multiply a {a.dtype} {ShapeText.Of(a.shape)} by a {b.dtype} {ShapeText.Of(b.shape)}: both operands need the same dtype.");
        if (!SameDevice(a, b))
            throw new TensorOperationException("matmul", $"cannot multiply a tensor on {a.device} by one on {b.device}: both operands need to be on the same device.");
        if (a.dtype == ScalarType.Bool || (a.device_type != DeviceType.CPU && !is_floating_point(a) && !is_complex(a)))
            throw new TensorOperationException("matmul", $"libtorch has no {a.dtype} matrix product on {a.device}; convert the operands (e.g. .to(ScalarType.Float32)).");
        long elements = 1;
        foreach (long d in shape)
            if (d != 0 && elements > long.MaxValue / d) { elements = long.MaxValue; break; }
            else elements *= d;
        long bytes = elements > long.MaxValue / a.ElementSize ? long.MaxValue : elements * a.ElementSize;
        if (bytes > 1L << 26 && bytes > SizeCheck.MemoryLimitBytes) // reading the limit costs more than a small product
            throw new TensorOperationException("matmul", $"multiplying {ShapeText.Of(a.shape)} by {ShapeText.Of(b.shape)} would make a " +
                $"{ShapeText.Of(shape)} {a.dtype} result of {SizeCheck.Describe(bytes)}, more than this machine's limit of " +
                $"{SizeCheck.Describe(SizeCheck.MemoryLimitBytes)} (raise it with --max-memory or {SizeCheck.MaxMemoryVariable}).");
    }

    static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    /// <summary>
    /// <c>torch.autograd.grad</c>, with what libtorch would refuse checked first: every output needs a gradient path
    /// (and is a single number unless <paramref name="gradOutputs"/> gives one gradient of its shape per output), every
    /// input requires grad, and an input the outputs do not depend on is an error unless <paramref name="allowUnused"/>
    /// (then its gradient is null).
    /// </summary>
    /// <exception cref="TensorOperationException">What libtorch would have refused, by position.</exception>
    public static IList<Tensor?> Grad(IList<Tensor> outputs, IList<Tensor> inputs, IList<Tensor>? gradOutputs = null,
        bool retainGraph = false, bool allowUnused = false)
    {
        if (gradOutputs is not null && gradOutputs.Count != outputs.Count)
            throw new TensorOperationException("autograd.grad", $"{gradOutputs.Count} output gradients were given for {outputs.Count} outputs.");
        for (int i = 0; i < outputs.Count; i++)
        {
            if (!outputs[i].requires_grad)
                throw new TensorOperationException("autograd.grad", $"output {i} ({ShapeText.Of(outputs[i].shape)}) does not depend on anything that requires grad, so it has no gradient.");
            if (gradOutputs is null && outputs[i].NumberOfElements != 1)
                throw new TensorOperationException("autograd.grad", $"output {i} has shape {ShapeText.Of(outputs[i].shape)}; without an output gradient it must be a single number (reduce it first).");
            if (gradOutputs is not null && !gradOutputs[i].shape.SequenceEqual(outputs[i].shape))
                throw new TensorOperationException("autograd.grad", $"the gradient given for output {i} has shape {ShapeText.Of(gradOutputs[i].shape)}, but the output has shape {ShapeText.Of(outputs[i].shape)}.");
            if (gradOutputs is not null && (gradOutputs[i].dtype != outputs[i].dtype || !SameDevice(gradOutputs[i], outputs[i])))
                throw new TensorOperationException("autograd.grad", $"the gradient given for output {i} is {gradOutputs[i].dtype} on {gradOutputs[i].device}, but the output is {outputs[i].dtype} on {outputs[i].device}.");
        }
        for (int i = 0; i < inputs.Count; i++)
            if (!inputs[i].requires_grad)
                throw new TensorOperationException("autograd.grad", $"input {i} ({ShapeText.Of(inputs[i].shape)}) does not require grad, so nothing can be differentiated with respect to it.");
        // Always allow unused inputs natively (libtorch's refusal of one would abort the process) and refuse here.
#pragma warning disable RS0030 // the one checked call
        var grads = autograd.grad(outputs, inputs, gradOutputs, retain_graph: retainGraph, allow_unused: true);
#pragma warning restore RS0030
        var result = new Tensor?[grads.Count];
        for (int i = 0; i < grads.Count; i++)
        {
            var g = grads[i];
            bool defined = g is not null && !g.IsInvalid;
            if (!defined && !allowUnused)
            {
                foreach (var d in grads) d?.Dispose();
                throw new TensorOperationException("autograd.grad", $"input {i} ({ShapeText.Of(inputs[i].shape)}) was not used to compute the outputs, so it has no gradient.");
            }
            result[i] = defined ? g : null;
        }
        return result;
    }

    /// <summary><c>torch.set_num_threads</c>, refusing a count below 1 (libtorch's refusal would abort the process).</summary>
    public static void SetNumThreads(int threads, string argument = "threads")
    {
        if (threads < 1)
            throw new SharpLensArgumentException(argument, $"{argument} is {threads}; the number of threads must be at least 1.");
#pragma warning disable RS0030 // the one checked call
        torch.set_num_threads(threads);
#pragma warning restore RS0030
    }
}

/// <summary>
/// A tensor operation refused before it reached libtorch (operands that do not fit together). The operation is
/// <see cref="Operation"/>; the message gives the shapes.
/// </summary>
public sealed class TensorOperationException(string operation, string message)
    : SharpLensException($"{operation}: {message}")
{
    /// <summary>The refused operation, e.g. <c>matmul</c>.</summary>
    public string Operation { get; } = operation;
    public override string? Field => Operation;
}
