using SharpLens.Saes;

namespace SharpLens.Attribution;

/// <summary>
/// What <see cref="TranscoderTrainer"/> builds and how it trains it. The optimiser, learning-rate schedule, sparsity
/// coefficient and its warm-up, JumpReLU's estimator and the dead-feature window are the SAE trainer's
/// (<see cref="Training"/>, a <see cref="SaeTrainingSettings"/>); the rest says what the set is.
/// </summary>
public sealed record TranscoderTrainingOptions
{
    /// <summary>A cross-layer transcoder (each feature writes to its own and every later MLP output) instead of one transcoder per layer.</summary>
    public bool CrossLayer { get; init; }
    public TranscoderActivation Activation { get; init; } = TranscoderActivation.Relu;
    /// <summary>Features per layer.</summary>
    public int DTranscoder { get; init; } = 512;
    /// <summary>TopK: features kept per token and layer.</summary>
    public int K { get; init; } = 16;
    /// <summary>Per-layer transcoders only: a linear skip path x S added to the output (circuit-tracer's W_skip).</summary>
    public bool Skip { get; init; }
    /// <summary>Where features read, under <c>blocks.{l}.</c> (TransformerLens names; <c>mlp.hook_in</c> means <c>ln2.hook_normalized</c>).</summary>
    public string FeatureInputHook { get; init; } = "ln2.hook_normalized";
    /// <summary>Where features write, under <c>blocks.{l}.</c>: the MLP output.</summary>
    public string FeatureOutputHook { get; init; } = "hook_mlp_out";
    /// <summary>
    /// c of Anthropic's CLT penalty λ Σ_i tanh(c · a_i ‖W_dec,i‖); 0 (default) uses the plain λ Σ_i a_i ‖W_dec,i‖ of
    /// SAELens's transcoders. ‖W_dec,i‖ is the norm of feature i's decoder rows for every output layer, concatenated.
    /// </summary>
    public double TanhScale { get; init; }
    /// <summary>Seeds the initial weights.</summary>
    public long Seed { get; init; }
    /// <summary>The set's identifier (graph.json's metadata.scan); default: the folder it is saved to.</summary>
    public string Scan { get; init; } = "";
    /// <summary>
    /// With checkpoints on (<see cref="SaeTrainingSettings.CheckpointEvery"/>, <see cref="SaeTrainingSettings.CheckpointFolder"/>):
    /// how many of the newest this run keeps (older ones are deleted once a newer one is complete; 0 keeps all). Two
    /// leave one to fall back to should the newest be damaged.
    /// </summary>
    public int KeepCheckpoints { get; init; }
    public SaeTrainingSettings Training { get; init; } = new() { L1Coefficient = 1e-3, JumpReLUInitThreshold = 0.05, JumpReLUBandwidth = 0.1 };

    /// <summary>Checks the numbers fit together; a bad value names the option and the fix.</summary>
    public TranscoderTrainingOptions Validated()
    {
        if (DTranscoder < 1) throw new AttributionArgumentException("d_transcoder", $"is {DTranscoder}; a transcoder needs at least one feature per layer.");
        if (Activation == TranscoderActivation.TopK && (K < 1 || K > DTranscoder))
            throw new AttributionArgumentException("k", $"is {K}; TopK keeps k features of d_transcoder = {DTranscoder}, so k must be in [1, {DTranscoder}].");
        if (CrossLayer && Skip)
            throw new AttributionArgumentException("skip", "circuit-tracer's cross-layer transcoder files have no skip connection; train a per-layer set for a skip path.");
        if (Training.Steps < 1) throw new AttributionArgumentException("steps", $"is {Training.Steps}; train for at least one step.");
        if (KeepCheckpoints < 0) throw new AttributionArgumentException("keep_checkpoints", $"is {KeepCheckpoints}; give 0 (keep all) or how many of the newest to keep.");
        if (Training.CheckpointEvery < 0) throw new AttributionArgumentException("checkpoint_every", $"is {Training.CheckpointEvery}; give 0 (no checkpoints) or a number of steps.");
        if (Training.CheckpointEvery > 0 && string.IsNullOrWhiteSpace(Training.CheckpointFolder))
            throw new AttributionArgumentException("checkpoint_folder", "is not set, but checkpoint_every is; say where the checkpoints go.");
        if (TanhScale < 0) throw new AttributionArgumentException("tanh_scale", $"is {TanhScale}; give 0 (plain L1) or a positive c.");
        if (Activation == TranscoderActivation.JumpRelu && (Training.JumpReLUBandwidth <= 0 || Training.JumpReLUInitThreshold <= 0))
            throw new AttributionArgumentException("jump_relu", "needs a positive bandwidth and initial threshold.");
        return this;
    }
}
