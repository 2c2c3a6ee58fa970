using System.Numerics;
using SharpLens.Techniques.Circuits;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Techniques.Circuits;

/// <summary>Every FactoredMatrix result against the same quantity computed from the materialised A·B.</summary>
public class FactoredMatrixTests
{
    const double Tol = 1e-9;

    // Float64 so that differences measure the method, not rounding. A [3 heads, 12, 5], B [3, 5, 12]: rank 5 of 12.
    static FactoredMatrix Random(long heads = 3, long m = 12, long r = 5, long n = 12, ulong seed = 1)
    {
        var g = new Generator(seed);
        return new FactoredMatrix(randn([heads, m, r], dtype: ScalarType.Float64, generator: g),
                                  randn([heads, r, n], dtype: ScalarType.Float64, generator: g));
    }

    static double MaxDiff(Tensor x, Tensor y) => (x - y).abs().max().item<double>();

    [Fact]
    public void Singular_values_match_the_svd_of_the_materialised_matrix()
    {
        var f = Random();
        var expected = linalg.svdvals(f.AB)[.., ..5]; // [heads, r]: the other 7 are zero
        Assert.True(MaxDiff(f.SingularValues, expected) < Tol);
        var (u, s, vh) = f.Svd();
        Assert.Equal(new long[] { 3, 12, 5 }, u.shape);
        Assert.Equal(new long[] { 3, 5, 12 }, vh.shape);
        Assert.True(MaxDiff(s, expected) < Tol);
        Assert.True(MaxDiff((u * s.unsqueeze(-2)).matmul(vh), f.AB) < Tol, "U·diag(S)·Vh does not rebuild A·B");
        var eye5 = eye(5, dtype: ScalarType.Float64);
        Assert.True(MaxDiff(u.transpose(-2, -1).matmul(u), eye5) < Tol, "U's columns are not orthonormal");
        Assert.True(MaxDiff(vh.matmul(vh.transpose(-2, -1)), eye5) < Tol, "Vh's rows are not orthonormal");
    }

    [Fact]
    public void Svd_of_a_wide_inner_dimension_matches_too()
    {
        // r = 9 > m = 4: rank is limited by the rows, not the inner dimension.
        var f = Random(heads: 2, m: 4, r: 9, n: 6);
        Assert.True(MaxDiff(f.SingularValues, linalg.svdvals(f.AB)) < Tol);
    }

    [Fact]
    public void Eigenvalues_are_the_non_zero_eigenvalues_of_the_materialised_matrix()
    {
        var f = Random();
        for (int h = 0; h < 3; h++)
        {
            var mine = Complexes(f.Eigenvalues[h]);
            var all = Complexes(linalg.eigvals(f.AB[h])).OrderByDescending(c => c.Magnitude).ToList();
            Assert.Equal(5, mine.Count);
            Assert.All(all.Skip(5), c => Assert.True(c.Magnitude < 1e-8, $"materialised eigenvalue {c} should be zero"));
            // Match each of ours to a distinct one of the top five.
            var remaining = all.Take(5).ToList();
            foreach (var c in mine)
            {
                var nearest = remaining.MinBy(o => (o - c).Magnitude);
                Assert.True((nearest - c).Magnitude < 1e-8, $"eigenvalue {c} of B·A has no match in eig(A·B) (nearest {nearest})");
                remaining.Remove(nearest);
            }
        }
    }

    static List<Complex> Complexes(Tensor t)
    {
        var parts = view_as_real(t.to(ScalarType.ComplexFloat64)).data<double>().ToArray(); // [n, 2]
        return [.. Enumerable.Range(0, parts.Length / 2).Select(i => new Complex(parts[2 * i], parts[2 * i + 1]))];
    }

    [Fact]
    public void Norm_is_the_frobenius_norm_of_the_materialised_matrix()
    {
        var f = Random();
        Assert.True(MaxDiff(f.Norm(), f.AB.pow(2).sum([-2, -1]).sqrt()) < Tol);
        Assert.True(MaxDiff(f.Norm(), f.SingularValues.pow(2).sum(-1).sqrt()) < Tol);
    }

    [Fact]
    public void Products_on_either_side_stay_factored_and_equal_the_materialised_products()
    {
        var g = new Generator(9);
        var f = Random();
        var right = randn([12, 7], dtype: ScalarType.Float64, generator: g);
        var left = randn([4, 12], dtype: ScalarType.Float64, generator: g);
        var other = Random(seed: 5);

        var fr = f.MatMul(right);
        Assert.Equal(new long[] { 3, 12, 7 }, fr.Shape);
        Assert.Equal(5, fr.InnerDim);
        Assert.True(MaxDiff(fr.AB, f.AB.matmul(right)) < Tol);

        var lf = FactoredMatrix.MatMul(left, f);
        Assert.Equal(new long[] { 3, 4, 12 }, lf.Shape);
        Assert.True(MaxDiff(lf.AB, left.matmul(f.AB)) < Tol);

        var ff = f.MatMul(other);
        Assert.Equal(5, ff.InnerDim);
        Assert.True(MaxDiff(ff.AB, f.AB.matmul(other.AB)) < Tol);

        // Few columns, wide inner dimension: (A·B)·X keeps inner dimension n = 4 rather than r = 9.
        var narrow = Random(m: 12, r: 9, n: 4);
        var x = randn([4, 3], dtype: ScalarType.Float64, generator: g);
        Assert.Equal(4, narrow.MatMul(x).InnerDim);
        Assert.True(MaxDiff(narrow.MatMul(x).AB, narrow.AB.matmul(x)) < Tol);
    }

    [Fact]
    public void Transpose_and_head_selection_match_the_materialised_matrix()
    {
        var f = Random();
        Assert.True(MaxDiff(f.T.AB, f.AB.transpose(-2, -1)) < Tol);
        Assert.True(MaxDiff(f[1].AB, f.AB[1]) < Tol);
        Assert.Equal(new long[] { 12, 12 }, f[2].Shape);
        Assert.True(MaxDiff(f.BA, f.B.matmul(f.A)) < Tol);
    }

    [Fact]
    public void Leading_dimensions_broadcast_between_the_factors()
    {
        var g = new Generator(3);
        var a = randn([12, 5], dtype: ScalarType.Float64, generator: g);
        var b = randn([4, 5, 8], dtype: ScalarType.Float64, generator: g);
        var f = new FactoredMatrix(a, b);
        Assert.Equal(new long[] { 4, 12, 8 }, f.Shape);
        Assert.True(MaxDiff(f[3].AB, a.matmul(b[3])) < Tol);
    }

    [Fact]
    public void Factors_that_do_not_chain_are_refused_with_both_shapes()
    {
        var error = Assert.Throws<ArgumentException>(() => new FactoredMatrix(zeros(6, 3), zeros(4, 6)));
        Assert.Contains("[6, 3]", error.Message);
        Assert.Contains("[4, 6]", error.Message);
        var wide = new FactoredMatrix(zeros(6, 3), zeros(3, 5));
        Assert.Throws<SharpLensException>(() => wide.Eigenvalues);
        Assert.Throws<ArgumentException>(() => wide.MatMul(zeros(6, 2)));
    }
}
