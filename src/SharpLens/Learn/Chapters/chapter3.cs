//:header
// Chapter 3 — Superposition and sparse autoencoders
//
// A model with more features than dimensions can still represent them, if they are sparse: it stores them in
// superposition, as almost-orthogonal directions, and lets a ReLU filter the interference (Elhage et al. 2022,
// "Toy Models of Superposition"). A sparse autoencoder (SAE) undoes this: trained to reconstruct activations
// through many sparse features, its decoder rows become the model's feature directions (Bricken et al. 2023,
// "Towards Monosemanticity"). You write the toy model, then an SAE in SAELens's conventions, and train it until
// it recovers the true directions of data whose features you know. (After ARENA's chapter 1.3.1.)
//
//     dotnet run chapter3.cs               (checks every exercise)
//     sharplens learn check chapter3.cs    (the same checks, without a build)
//
// Shapes: the toy model's W is [d_hidden, n_features] (one column per feature), x is [batch, n_features]. An SAE's
// W_enc is [d_in, d_sae], W_dec is [d_sae, d_in] (one row per feature), b_enc [d_sae], b_dec [d_in] (SAELens's).
//
// Multiply with x.MatMul(y) (SharpLens's checked matmul), not TorchSharp's x.matmul(y): on a shape mismatch
// TorchSharp's matmul ends the whole program, while MatMul throws an exception that names both shapes, and the
// check tells you which exercise and line.

using SharpLens;
using SharpLens.Learn;
using TorchSharp;
using static TorchSharp.torch;

return Chapter3.Check(args, new Chapter3.Exercises
{
    ToyForward = Exercises.ToyForward,
    ImportanceLoss = Exercises.ImportanceLoss,
    Dimensionality = Exercises.Dimensionality,
    SaeEncode = Exercises.SaeEncode,
    SaeLoss = Exercises.SaeLoss,
    TrainSae = Exercises.TrainSae,
});

static class Exercises
{
    // ── 1. ToyForward ────────────────────────────────────────────────────────────────────────────────────────────
    // The toy model compresses n features into d < n dimensions and back: h = W x, then x' = ReLU(Wᵀ h + b).
    // x [batch, n], W [d, n], b [n] → x' [batch, n]. (Row vectors: h = x Wᵀ.)
    public static Tensor ToyForward(Tensor x, Tensor W, Tensor b)
    {
        //> solution
        var hidden = x.MatMul(W.t());                      // [batch, d]
        return (hidden.MatMul(W) + b).relu();              // [batch, n]
        //< solution
    }

    // ── 2. ImportanceLoss ────────────────────────────────────────────────────────────────────────────────────────
    // Some features matter more: the loss weights feature i's squared error by its importance I_i, and averages over
    // the batch and the features: mean_{batch, i} I_i (x_i − x'_i)². x, x' [batch, n], importance [n] → a scalar.
    public static Tensor ImportanceLoss(Tensor x, Tensor xHat, Tensor importance)
    {
        //> solution
        return (importance * (x - xHat).pow(2)).mean();
        //< solution
    }

    // ── 3. Dimensionality ────────────────────────────────────────────────────────────────────────────────────────
    // How much of a dimension feature i gets: D_i = ‖W_i‖² / Σ_j (Ŵ_i · W_j)², with W_i the i-th column and Ŵ_i its
    // unit vector. A feature with a dimension of its own has D_i = 1; two features sharing one (antipodal) ½ each;
    // a feature the model ignores ≈ 0. W [d, n] → [n]. The D_i never sum to more than d.
    // Hint: W.norm(0) is [n], the norm of each column.
    public static Tensor Dimensionality(Tensor W)
    {
        //> solution
        var norms = W.norm(0);                             // [n] ‖W_i‖
        var overlaps = (W / norms).t().MatMul(W);          // [n, n] Ŵ_i · W_j
        return norms.pow(2) / overlaps.pow(2).sum(1);      // [n]
        //< solution
    }

    // ── 4. SaeEncode ─────────────────────────────────────────────────────────────────────────────────────────────
    // SAELens's standard SAE encodes an input by first centring it on the decoder bias:
    // f = ReLU((x − b_dec) W_enc + b_enc). x [batch, d_in] → f [batch, d_sae]. (Decoding is x̂ = f W_dec + b_dec.)
    public static Tensor SaeEncode(Tensor x, Tensor W_enc, Tensor b_enc, Tensor b_dec)
    {
        //> solution
        return ((x - b_dec).MatMul(W_enc) + b_enc).relu(); // [batch, d_sae]
        //< solution
    }

    // ── 5. SaeLoss ───────────────────────────────────────────────────────────────────────────────────────────────
    // The loss SAELens trains a standard SAE with: the squared reconstruction error summed over d_in, plus l1 times
    // the features' activations weighted by their decoder rows' norms, Σ_i f_i ‖W_dec,i‖ — each averaged over the
    // batch. (Without the norms, the SAE could shrink f and grow W_dec to dodge the penalty.) → a scalar.
    public static Tensor SaeLoss(Tensor x, Tensor xHat, Tensor f, Tensor W_dec, double l1)
    {
        //> solution
        var reconstruction = (xHat - x).pow(2).sum(-1).mean();
        var sparsity = (f * W_dec.norm(1)).sum(-1).mean(); // W_dec.norm(1): [d_sae], each row's norm
        return reconstruction + l1 * sparsity;
        //< solution
    }

    // ── 6. TrainSae ──────────────────────────────────────────────────────────────────────────────────────────────
    // Train an SAE with your SaeEncode and SaeLoss on toy data: sample(i) gives batch i, [256, d_in], inputs that are
    // sparse sums of unknown unit feature directions. Return W_dec [d_sae, d_in]; the check compares its rows with
    // the true directions and needs a mean best cosine ≥ 0.9. A recipe that works: W_enc = 0.1·randn, W_dec its
    // transpose with unit rows, zero biases, all four as Parameters (requires_grad); Adam, lr 3e-3, 1500 steps,
    // l1 = 0.3; after each step rescale W_dec's rows to unit norm (under no_grad). Seed it (torch.manual_seed) so
    // every run gives the same result, and wrap each step in a torch.NewDisposeScope().
    public static Tensor TrainSae(Func<long, Tensor> sample, int dIn, int dSae)
    {
        //> solution
        torch.manual_seed(0);
        var W_enc = new TorchSharp.Modules.Parameter(torch.randn(dIn, dSae) * 0.1);                  // [d_in, d_sae]
        var W_dec = new TorchSharp.Modules.Parameter(W_enc.detach().t() / W_enc.detach().t().norm(1, keepdim: true)); // [d_sae, d_in]
        var b_enc = new TorchSharp.Modules.Parameter(torch.zeros(dSae));
        var b_dec = new TorchSharp.Modules.Parameter(torch.zeros(dIn));
        var optimizer = torch.optim.Adam([W_enc, W_dec, b_enc, b_dec], lr: 3e-3);
        for (int step = 0; step < 1500; step++)
        {
            using var scope = torch.NewDisposeScope();
            var x = sample(step);                                                                       // [batch, d_in]
            var f = SaeEncode(x, W_enc, b_enc, b_dec);                                                  // [batch, d_sae]
            var loss = SaeLoss(x, f.MatMul(W_dec) + b_dec, f, W_dec, 0.3);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            using (torch.no_grad()) W_dec.div_(W_dec.norm(1, keepdim: true));
        }
        return W_dec.detach();
        //< solution
    }
}
