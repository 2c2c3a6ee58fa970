namespace SharpLens.Diffing;

/// <summary>
/// How <see cref="CrossCoderTrainer"/> trains. Defaults follow dictionary_learning's crosscoder trainers; every schedule
/// left null scales with <see cref="Steps"/>, so a run of a few hundred steps still warms up, anneals k and estimates
/// its threshold (the fork's fixed 1000/2000-step constants assume ~70,000 steps).
/// </summary>
public sealed record CrossCoderTrainingSettings
{
    public int Steps { get; init; } = 2000;
    /// <summary>Adam's learning rate; null: 1e-3 for L1 (CrossCoderTrainer), 2e-4 / √(dict_size / 2¹⁴) for BatchTopK.</summary>
    public double? LearningRate { get; init; }
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    /// <summary>Linear learning-rate warm-up from 0; null: min(1000, 5% of the steps).</summary>
    public int? WarmupSteps { get; init; }
    /// <summary>The step where the learning rate starts falling linearly to 0 at the end; null: 80% of the steps.</summary>
    public int? DecayStart { get; init; }
    /// <summary>Clip the global gradient norm to this (dictionary_learning: 1.0).</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Train on the squared error (Σ_d (x − x̂)²) instead of dictionary_learning's default, the error's norm ‖x − x̂‖.</summary>
    public bool UseMseLoss { get; init; }

    /// <summary>L1: λ (dictionary_learning's l1_penalty, the papers' μ) of λ Σ_i f_i c_i.</summary>
    public double L1Penalty { get; init; } = 0.1;
    /// <summary>L1: steps over which λ rises linearly from 0; null: 5% of the steps.</summary>
    public int? SparsityWarmupSteps { get; init; }

    /// <summary>BatchTopK: the k training starts with, annealed linearly to the crosscoder's k; null: min(10 k, dict_size / 2).</summary>
    public int? KMax { get; init; }
    /// <summary>BatchTopK: steps of the k annealing; null: min(2000, 10% of the steps).</summary>
    public int? KAnnealingSteps { get; init; }
    /// <summary>BatchTopK: the step after which the inference threshold is estimated; null: min(1000, 5% of the steps).</summary>
    public int? ThresholdStartStep { get; init; }
    /// <summary>BatchTopK: β of the threshold's moving average; null: 0.999, or 1 − 10 / steps when that is smaller (a short run's average must move).</summary>
    public double? ThresholdBeta { get; init; }
    /// <summary>BatchTopK: weight of AuxK, the dead latents' reconstruction of the residual (dictionary_learning: 1/32).</summary>
    public double AuxKAlpha { get; init; } = 1.0 / 32;
    /// <summary>BatchTopK: a latent that has not fired for this many tokens is dead; null: min(10,000,000, 5% of the training tokens).</summary>
    public long? DeadTokens { get; init; }

    /// <summary>
    /// Designated shared latents (Anthropic's 2025 diffing update): the first this many latents have one decoder shared by
    /// all models (kept tied) and a reduced sparsity penalty, so the exclusive latents are left with what really differs.
    /// </summary>
    public int SharedLatents { get; init; }
    /// <summary>L1: the shared latents' penalty relative to the others' (BatchTopK has no penalty to reduce: its shared latents are only tied).</summary>
    public double SharedPenaltyScale { get; init; } = 0.2;

    /// <summary>Set dictionary_learning's normaliser from the first batch (per-model mean and std) so each model's centred activations have RMS norm <see cref="TargetRms"/>.</summary>
    public bool NormalizeActivations { get; init; } = true;
    public double TargetRms { get; init; } = 1.0;

    public int ReportEvery { get; init; } = 10;
    /// <summary>Write a checkpoint to CheckpointFolder/step-N every this many steps (0: never).</summary>
    public int CheckpointEvery { get; init; }
    public string? CheckpointFolder { get; init; }

    public double LearningRateFor(CrossCoderConfig config) => LearningRate ??
        (config.Architecture == CrossCoderArchitecture.L1 ? 1e-3 : 2e-4 / Math.Sqrt(config.DictSize / 16384.0));
    public int Warmup => WarmupSteps ?? Math.Min(1000, Steps / 20);
    public int Decay => DecayStart ?? (int)(Steps * 0.8);
    public int SparsityWarmup => SparsityWarmupSteps ?? Steps / 20;
    public int KMaxFor(CrossCoderConfig config) => Math.Max(config.K, KMax ?? Math.Min(10 * config.K, config.DictSize / 2));
    public int KAnnealing => KAnnealingSteps ?? Math.Min(2000, Steps / 10);
    public int ThresholdStart => ThresholdStartStep ?? Math.Min(1000, Steps / 20);
    public double Beta => ThresholdBeta ?? Math.Min(0.999, 1 - 10.0 / Math.Max(20, Steps));
    public long DeadTokensFor(long tokensPerStep) => DeadTokens ?? Math.Min(10_000_000, Math.Max(1, Steps * tokensPerStep / 20));

    public CrossCoderTrainingSettings Validated(CrossCoderConfig config)
    {
        if (Steps < 1) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "Train for at least one step.");
        if (SharedLatents < 0 || SharedLatents >= config.DictSize)
            throw new ArgumentOutOfRangeException(nameof(SharedLatents), SharedLatents, $"SharedLatents must be between 0 and dict_size − 1 ({config.DictSize - 1}).");
        if (SharedPenaltyScale <= 0) throw new ArgumentOutOfRangeException(nameof(SharedPenaltyScale), SharedPenaltyScale, "SharedPenaltyScale must be positive.");
        return this;
    }
}

/// <summary>Where crosscoder training stands after a step: losses, L0, explained variance per model, dead latents, k, threshold.</summary>
public sealed record CrossCoderTrainingProgress(int Step, int TotalSteps, double Loss, double Mse, double L0,
    IReadOnlyList<double> ExplainedVariance, int DeadLatents, int K, double Threshold, double LearningRate);
