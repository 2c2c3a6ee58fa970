using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>
/// A sparse autoencoder or transcoder with SAELens's tensors, hook points and maths:
/// x̃ = normalize(x) − b_dec (when apply_b_dec_to_input), f = σ(x̃ W_enc + b_enc), x̂ = f W_dec + b_dec, denormalized.
/// σ is the architecture's activation (see <see cref="SaeArchitecture"/>); a skip transcoder adds x W_skip.
/// </summary>
/// <remarks>
/// Hook points, as SAELens's HookedSAETransformer names them once spliced at a model hook H:
/// H.hook_sae_input, H.hook_sae_acts_pre, H.hook_sae_acts_post, H.hook_sae_recons, H.hook_sae_error, H.hook_sae_output.
/// </remarks>
public sealed class Sae : nn.Module
{
    public SaeConfig Config { get; internal set; }
    public Parameter W_enc; // [d_in, d_sae]
    public Parameter W_dec; // [d_sae, d_out]
    public Parameter b_dec; // [d_out]
    public Parameter? b_enc;     // [d_sae], all but gated
    public Parameter? threshold; // [d_sae], JumpReLU and BatchTopK at inference
    public Parameter? b_gate, r_mag, b_mag; // [d_sae], gated
    public Parameter? W_skip; // [d_in, d_out], skip transcoder (SAELens's file stores its transpose)

    /// <summary>Add x − x̂ to the output, so whatever reads it downstream sees exactly the original activation.</summary>
    public bool UseErrorTerm { get; set; }

    HookPoint hook_sae_input = null!, hook_sae_acts_pre = null!, hook_sae_acts_post = null!,
              hook_sae_recons = null!, hook_sae_error = null!, hook_sae_output = null!;
    bool _hooksOff;

    /// <summary>Builds an SAE with SAELens's initialisation: decoder rows of norm 0.1, W_enc = W_decᵀ, biases 0.</summary>
    public Sae(SaeConfig config, long seed = 0) : base("Sae")
    {
        TorchNative.EnsureLoaded();
        Config = config.Validated();
        var (dIn, dSae, dOut) = (config.DIn, config.DSae, config.OutputDim);
        var dtype = SaeDTypes.Parse(config.DType);
        var generator = new Generator((ulong)seed);
        var decoder = torch.randn(dSae, dOut, generator: generator);
        decoder = 0.1 * decoder / decoder.norm(1, keepdim: true);
        // The encoder is built first: a Parameter takes over its tensor, and a copy made afterwards would not be a leaf.
        W_enc = new Parameter(dOut == dIn ? decoder.t().contiguous().to(dtype) : (0.1 * torch.randn(dIn, dSae, generator: generator) / Math.Sqrt(dIn)).to(dtype));
        W_dec = new Parameter(decoder.to(dtype));
        b_dec = new Parameter(torch.zeros(dOut, dtype));
        if (config.Architecture == SaeArchitecture.Gated)
        {
            b_gate = new Parameter(torch.zeros(dSae, dtype));
            r_mag = new Parameter(torch.zeros(dSae, dtype));
            b_mag = new Parameter(torch.zeros(dSae, dtype));
        }
        else b_enc = new Parameter(torch.zeros(dSae, dtype));
        if (config.HasThreshold) threshold = new Parameter(torch.zeros(dSae, dtype));
        if (config.Architecture == SaeArchitecture.SkipTranscoder) W_skip = new Parameter(torch.zeros(dIn, dOut, dtype));
        NameHooks(config.Metadata.HookName);
        RegisterComponents();
    }

    /// <summary>The six hook points, in the order a forward pass reaches them.</summary>
    public IReadOnlyList<HookPoint> HookPoints =>
        [hook_sae_input, hook_sae_acts_pre, hook_sae_acts_post, hook_sae_recons, hook_sae_error, hook_sae_output];

    /// <summary>Names the hook points after the model hook the SAE sits at ("H.hook_sae_acts_post"), or bare when none.</summary>
    internal void NameHooks(string? attachedAt)
    {
        string prefix = string.IsNullOrEmpty(attachedAt) ? "" : attachedAt + ".";
        hook_sae_input = new HookPoint(prefix + "hook_sae_input");
        hook_sae_acts_pre = new HookPoint(prefix + "hook_sae_acts_pre");
        hook_sae_acts_post = new HookPoint(prefix + "hook_sae_acts_post");
        hook_sae_recons = new HookPoint(prefix + "hook_sae_recons");
        hook_sae_error = new HookPoint(prefix + "hook_sae_error");
        hook_sae_output = new HookPoint(prefix + "hook_sae_output");
    }

    Tensor Hook(HookPoint point, Tensor x) => _hooksOff ? x : point.Apply(x);

    /// <summary>Feature activations [..., d_sae] for inputs [..., d_in] (or [..., n_heads, d_head] for hook_z SAEs).</summary>
    public Tensor Encode(Tensor x)
    {
        using var scope = torch.NewDisposeScope();
        var (sae_in, _) = ProcessInput(x);
        return Activate(sae_in).Acts.MoveToOuterDisposeScope();
    }

    /// <summary>Reconstruction [..., d_out] of features; <paramref name="input"/> is needed to undo per-input normalization.</summary>
    public Tensor Decode(Tensor features, Tensor? input = null)
    {
        using var scope = torch.NewDisposeScope();
        var norm = InputNormalization.Identity;
        if (Config.NormalizeActivations is ActivationNormalization.ConstantNormRescale or ActivationNormalization.LayerNorm && !Config.IsTranscoder)
            norm = ProcessInput(input ?? throw new ArgumentException(
                $"This SAE normalizes each input ({Config.NormalizeActivations}); pass the input to Decode so the scale can be undone.", nameof(input))).Norm;
        return DecodeWith(features, norm, input).MoveToOuterDisposeScope();
    }

    /// <summary>The SAE's output for x: the reconstruction (plus the error term when <see cref="UseErrorTerm"/>).</summary>
    /// <param name="target">For a transcoder, the activation it predicts (its error term is target − prediction).</param>
    public Tensor Forward(Tensor x, Tensor? target = null)
    {
        using var scope = torch.NewDisposeScope();
        var (sae_in, norm) = ProcessInput(x);
        var output = DecodeWith(Activate(sae_in).Acts, norm, x);
        if (UseErrorTerm)
        {
            var reference = Config.IsTranscoder ? target : x;
            if (reference is not null)
            {
                Tensor clean;
                using (torch.no_grad())
                {
                    // The error is taken from a pass without hooks, so patched features change the output and nothing else.
                    _hooksOff = true;
                    try { var (cleanIn, cleanNorm) = ProcessInput(x); clean = DecodeWith(Activate(cleanIn).Acts, cleanNorm, x); }
                    finally { _hooksOff = false; }
                }
                output = output + Hook(hook_sae_error, reference - clean);
            }
        }
        return Hook(hook_sae_output, output).MoveToOuterDisposeScope();
    }

    /// <summary>Reshape, hook_sae_input, normalize, subtract b_dec: the input the encoder sees, [..., d_in].</summary>
    internal (Tensor SaeIn, InputNormalization Norm) ProcessInput(Tensor x)
    {
        x = x.to(W_enc.dtype);
        if (Config.ReshapeHookZ) x = x.flatten(-2); // [..., n_heads * d_head]
        if (x.shape[^1] != Config.DIn)
            throw new ArgumentException($"The SAE reads d_in = {Config.DIn} but got an input of shape {ShapeText.Of(x.shape)}" +
                (Config.ReshapeHookZ ? " (flattened from [..., n_heads, d_head])." : "."), nameof(x));
        x = Hook(hook_sae_input, x);
        var norm = InputNormalization.Of(Config.NormalizeActivations, x, Config.DIn);
        x = norm.Apply(x);
        return (Config.ApplyBDecToInput ? x - b_dec : x, norm);
    }

    /// <summary>The architecture's encoder on a processed input: features and the pre-activations hook_sae_acts_pre saw.</summary>
    internal (Tensor Acts, Tensor Pre) Activate(Tensor sae_in)
    {
        var (pre, gate) = PreActivations(sae_in);
        return (Hook(hook_sae_acts_post, Nonlinearity(pre, gate)), pre);
    }

    /// <summary>
    /// The encoder's affine maps, through hook_sae_acts_pre: pre-activations [..., d_sae]; for gated SAEs these are the
    /// magnitude path's, and <c>Gate</c> is the gate path's (null otherwise). Training reads these too.
    /// </summary>
    internal (Tensor Pre, Tensor? Gate) PreActivations(Tensor sae_in)
    {
        if (Config.Architecture == SaeArchitecture.Gated)
        {
            var gate = sae_in.MatMul(W_enc) + b_gate!; // [..., d_sae]
            return (Hook(hook_sae_acts_pre, sae_in.MatMul(W_enc * r_mag!.exp()) + b_mag!), gate); // [..., d_sae]
        }
        return (Hook(hook_sae_acts_pre, sae_in.MatMul(W_enc) + b_enc!), null); // [..., d_sae]
    }

    /// <summary>The architecture's activation at inference: ReLU, top-k, a threshold, or the gate's step times ReLU.</summary>
    internal Tensor Nonlinearity(Tensor pre, Tensor? gate) => Config.Architecture switch
    {
        SaeArchitecture.Gated => (gate! > 0).to(pre.dtype) * pre.relu(),
        SaeArchitecture.TopK => TopKRelu(pre, Config.K),
        SaeArchitecture.JumpReLU or SaeArchitecture.BatchTopK => pre.relu() * (pre > threshold!).to(pre.dtype),
        _ => pre.relu(),
    };

    /// <summary>Keeps the k largest entries of the last dimension, ReLU'd; the rest are 0.</summary>
    internal static Tensor TopKRelu(Tensor pre, int k)
    {
        var (values, indices) = pre.topk(k, dim: -1); // [..., k]
        return torch.zeros_like(pre).scatter(-1, indices, values.relu());
    }

    internal Tensor DecodeWith(Tensor features, InputNormalization norm, Tensor? x)
    {
        var recons = Hook(hook_sae_recons, features.MatMul(W_dec) + b_dec); // [..., d_out]
        if (Config.IsTranscoder)
            return W_skip is null || x is null ? recons : recons + x.to(W_skip.dtype).MatMul(W_skip);
        recons = norm.Undo(recons);
        return Config.ReshapeHookZ && x is not null ? recons.reshape(x.shape) : recons; // [..., n_heads, d_head] for hook_z
    }
}
