using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Circuits;

/// <summary>
/// The matrix A·B kept as its two factors, A [..., m, r] and B [..., r, n], as TransformerLens's FactoredMatrix.
/// A head's QK circuit W_Q·W_Kᵀ is d_model × d_model but has rank d_head; through the embedding and unembedding
/// (W_E·W_V·W_O·W_U) it is d_vocab × d_vocab, far too big to materialise for GPT-2, yet its SVD, eigenvalues and norm
/// all follow from the factors at the cost of r × r work. Leading dimensions (layers, heads) broadcast, and
/// <c>this[h]</c> selects along them.
/// <para>The factors are ordinary tensors and belong to the dispose scope they were created in; call
/// <see cref="MoveToOuterDisposeScope"/> to keep a result beyond it.</para>
/// </summary>
public sealed class FactoredMatrix
{
    /// <summary>Left factor [..., m, r].</summary>
    public Tensor A { get; }
    /// <summary>Right factor [..., r, n].</summary>
    public Tensor B { get; }

    public FactoredMatrix(Tensor a, Tensor b)
    {
        if (a.dim() < 2 || b.dim() < 2)
            throw new ArgumentException($"FactoredMatrix needs matrices (at least 2 dimensions); got A {ShapeText.Of(a.shape)} and B {ShapeText.Of(b.shape)}.", a.dim() < 2 ? nameof(a) : nameof(b));
        if (a.shape[^1] != b.shape[^2])
            throw new ArgumentException($"FactoredMatrix factors do not chain: A {ShapeText.Of(a.shape)} has {a.shape[^1]} columns but B {ShapeText.Of(b.shape)} has {b.shape[^2]} rows.", nameof(b));
        // Broadcast the leading dimensions once (views, no copies) so that indexing and products see one batch shape.
        var leading = BroadcastShape(a.shape[..^2], b.shape[..^2])
            ?? throw new ArgumentException($"FactoredMatrix factors' leading dimensions do not broadcast: A {ShapeText.Of(a.shape)}, B {ShapeText.Of(b.shape)}.", nameof(b));
        A = a.expand([.. leading, a.shape[^2], a.shape[^1]]);
        B = b.expand([.. leading, b.shape[^2], b.shape[^1]]);
    }

    /// <summary>Leading (batch) dimensions, e.g. [n_layers, n_heads].</summary>
    public long[] LeadingShape => A.shape[..^2];
    /// <summary>Rows m of A·B.</summary>
    public long Rows => A.shape[^2];
    /// <summary>Columns n of A·B.</summary>
    public long Columns => B.shape[^1];
    /// <summary>Inner dimension r: the rank is at most this.</summary>
    public long InnerDim => A.shape[^1];
    /// <summary>[..., m, n], the shape of A·B.</summary>
    public long[] Shape => [.. LeadingShape, Rows, Columns];

    /// <summary>A·B materialised: [..., m, n].</summary>
    public Tensor AB => A.MatMul(B);

    /// <summary>B·A [..., r, r]: shares A·B's non-zero eigenvalues. Needs a square A·B.</summary>
    public Tensor BA
    {
        get
        {
            RequireSquare(nameof(BA));
            return B.MatMul(A);
        }
    }

    /// <summary>The transpose (A·B)ᵀ = Bᵀ·Aᵀ, still factored.</summary>
    public FactoredMatrix T => new(B.transpose(-2, -1), A.transpose(-2, -1));

    /// <summary>Selects along the leading dimensions, e.g. <c>ov[layer, head]</c>; the two matrix dimensions stay whole.</summary>
    public FactoredMatrix this[params TensorIndex[] indices]
    {
        get
        {
            if (indices.Length > LeadingShape.Length)
                throw new ArgumentException($"FactoredMatrix of shape {ShapeText.Of(Shape)} has {LeadingShape.Length} leading dimension(s); " +
                    $"got {indices.Length} indices. Index only the leading (layer/head) dimensions; use AB to index rows and columns.", nameof(indices));
            return new FactoredMatrix(A[indices], B[indices]);
        }
    }

    /// <summary>This · <paramref name="right"/> [..., n, p], still factored; the inner dimension stays the smaller one.</summary>
    public FactoredMatrix MatMul(Tensor right)
    {
        RequireChain(Columns, right.shape[^2], "right", right);
        // A·(B·X) keeps inner dim r; (A·B)·X keeps n. Keep whichever is smaller so the factors stay low-rank.
        return InnerDim <= Columns ? new FactoredMatrix(A, B.MatMul(right)) : new FactoredMatrix(AB, right);
    }

    /// <summary><paramref name="left"/> [..., p, m] · this, still factored.</summary>
    public static FactoredMatrix MatMul(Tensor left, FactoredMatrix right)
    {
        right.RequireChain(right.Rows, left.shape[^1], "left", left);
        return right.InnerDim <= right.Rows ? new FactoredMatrix(left.MatMul(right.A), right.B) : new FactoredMatrix(left, right.AB);
    }

    /// <summary>This · <paramref name="right"/>, still factored, through the smaller of the two inner dimensions.</summary>
    public FactoredMatrix MatMul(FactoredMatrix right)
    {
        RequireChain(Columns, right.Rows, "right", right.A);
        // (A₁B₁)(A₂B₂) = A₁·(B₁A₂B₂) with inner r₁, or (A₁B₁A₂)·B₂ with inner r₂.
        return InnerDim <= right.InnerDim
            ? new FactoredMatrix(A, B.MatMul(right.A).MatMul(right.B))
            : new FactoredMatrix(A.MatMul(B).MatMul(right.A), right.B);
    }

    /// <summary>
    /// Thin SVD of A·B from the factors: A = Q_a·R_a and Bᵀ = Q_b·R_b (QR), so A·B = Q_a·(R_a·R_bᵀ)·Q_bᵀ and only the
    /// small core R_a·R_bᵀ needs an SVD. U [..., m, k], S [..., k] (descending), Vh [..., k, n] with k = min(m, n, r).
    /// </summary>
    public (Tensor U, Tensor S, Tensor Vh) Svd()
    {
        using var scope = NewDisposeScope();
        var (qa, ra) = linalg.qr(A);                      // [..., m, k_a], [..., k_a, r]
        var (qb, rb) = linalg.qr(B.transpose(-2, -1));    // [..., n, k_b], [..., k_b, r]
        var core = ra.MatMul(rb.transpose(-2, -1));       // [..., k_a, k_b]
        var (uc, s, vhc) = linalg.svd(core, fullMatrices: false);
        var u = qa.MatMul(uc);                            // [..., m, k]
        var vh = vhc.MatMul(qb.transpose(-2, -1));        // [..., k, n]
        return (u.MoveToOuterDisposeScope(), s.MoveToOuterDisposeScope(), vh.MoveToOuterDisposeScope());
    }

    /// <summary>Singular values of A·B [..., min(m, n, r)], largest first.</summary>
    public Tensor SingularValues
    {
        get
        {
            using var scope = NewDisposeScope();
            var (_, ra) = linalg.qr(A);
            var (_, rb) = linalg.qr(B.transpose(-2, -1));
            return linalg.svdvals(ra.MatMul(rb.transpose(-2, -1))).MoveToOuterDisposeScope(); // [..., k]
        }
    }

    /// <summary>
    /// Eigenvalues [..., r] (complex) of B·A, which are A·B's non-zero eigenvalues (A·B's other m − r are zero).
    /// Needs a square A·B.
    /// </summary>
    public Tensor Eigenvalues => linalg.eigvals(BA);

    /// <summary>
    /// ‖A·B‖_F [...] without forming A·B: ‖A·B‖²_F = tr(Bᵀ·AᵀA·B) = Σ (AᵀA) ⊙ (B·Bᵀ), two r × r Gram matrices.
    /// </summary>
    public Tensor Norm()
    {
        using var scope = NewDisposeScope();
        var gramA = A.transpose(-2, -1).MatMul(A); // [..., r, r]
        var gramB = B.MatMul(B.transpose(-2, -1)); // [..., r, r]
        return (gramA * gramB).sum([-2, -1]).clamp_min(0).sqrt().MoveToOuterDisposeScope(); // [...]
    }

    /// <summary>Moves both factors out of the current dispose scope, so the matrix outlives it.</summary>
    public FactoredMatrix MoveToOuterDisposeScope()
    {
        A.MoveToOuterDisposeScope();
        B.MoveToOuterDisposeScope();
        return this;
    }

    public override string ToString() =>
        $"FactoredMatrix {ShapeText.Of(Shape)} = A {ShapeText.Of(A.shape)} · B {ShapeText.Of(B.shape)}";

    void RequireSquare(string what)
    {
        if (Rows != Columns)
            throw new SharpLensException($"{what} needs a square matrix; this FactoredMatrix is {Rows} × {Columns}.");
    }

    void RequireChain(long have, long other, string argument, Tensor t)
    {
        if (have != other)
            throw new ArgumentException($"Cannot multiply FactoredMatrix {ShapeText.Of(Shape)} with {argument} {ShapeText.Of(t.shape)}: " +
                $"inner sizes {have} and {other} differ.", argument);
    }

    /// <summary>NumPy broadcasting of two shapes, or null when they do not broadcast.</summary>
    static long[]? BroadcastShape(long[] x, long[] y)
    {
        int n = Math.Max(x.Length, y.Length);
        var result = new long[n];
        for (int i = 1; i <= n; i++)
        {
            long dx = i <= x.Length ? x[^i] : 1, dy = i <= y.Length ? y[^i] : 1;
            if (dx != dy && dx != 1 && dy != 1) return null;
            result[^i] = Math.Max(dx, dy);
        }
        return result;
    }
}
