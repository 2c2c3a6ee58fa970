using static TorchSharp.torch;

namespace SharpLens.Grokking;

/// <summary>
/// The real Fourier basis of functions on Z_p (p odd): the constant 1/√p, then for each frequency k = 1 … (p−1)/2 the
/// pair cos(2πkx/p)·√(2/p) and sin(2πkx/p)·√(2/p). The p vectors are orthonormal, so F f gives the coefficients of a
/// function f on Z_p and Fᵀ (F f) gives f back.
/// </summary>
public static class FourierBasis
{
    /// <summary>[p, p] (float64): row 0 constant, row 2k−1 cos k, row 2k sin k; column x is the input.</summary>
    public static Tensor Create(int p)
    {
        if (p < 3 || p % 2 == 0) throw new ArgumentException($"The Fourier basis here is for odd p ≥ 3, got {p}.", nameof(p));
        var rows = new double[p, p];
        for (int x = 0; x < p; x++)
        {
            rows[0, x] = 1 / Math.Sqrt(p);
            for (int k = 1; k <= p / 2; k++)
            {
                double angle = 2 * Math.PI * k * x / p;
                rows[2 * k - 1, x] = Math.Cos(angle) * Math.Sqrt(2.0 / p);
                rows[2 * k, x] = Math.Sin(angle) * Math.Sqrt(2.0 / p);
            }
        }
        return tensor(rows);
    }

    /// <summary>How many frequencies Z_p has: (p − 1)/2.</summary>
    public static int Frequencies(int p) => p / 2;

    /// <summary>Name of row <paramref name="row"/>: "const", "cos k" or "sin k".</summary>
    public static string Name(int row) => row == 0 ? "const" : $"{(row % 2 == 1 ? "cos" : "sin")} {(row + 1) / 2}";

    /// <summary>w_k = 2πk/p, the angular frequency of frequency k.</summary>
    public static double Omega(int k, int p) => 2 * Math.PI * k / p;
}
