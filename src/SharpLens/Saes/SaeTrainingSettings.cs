namespace SharpLens.Saes;

/// <summary>How <see cref="SaeTrainer"/> trains; the defaults follow SAELens where it has one.</summary>
public sealed record SaeTrainingSettings
{
    public int Steps { get; init; } = 2000;
    public double LearningRate { get; init; } = 3e-4;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    /// <summary>Steps over which the learning rate rises linearly from 0.</summary>
    public int LrWarmupSteps { get; init; }
    /// <summary>Final steps over which the learning rate falls linearly to 0.</summary>
    public int LrDecaySteps { get; init; }

    /// <summary>λ of the sparsity penalty of standard, gated and transcoder SAEs: λ Σ_i f_i ‖W_dec,i‖.</summary>
    public double L1Coefficient { get; init; } = 1.0;
    /// <summary>Steps over which λ rises linearly from 0 (L1 or L0).</summary>
    public int SparsityWarmupSteps { get; init; }
    /// <summary>Coefficient of JumpReLU's L0 penalty.</summary>
    public double L0Coefficient { get; init; } = 1.0;
    /// <summary>JumpReLU's straight-through estimator: the rectangle kernel's width ε.</summary>
    public double JumpReLUBandwidth { get; init; } = 0.001;
    public double JumpReLUInitThreshold { get; init; } = 0.001;

    /// <summary>Coefficient of TopK/BatchTopK's auxiliary loss, which lets dead features reconstruct the residual.</summary>
    public double AuxKCoefficient { get; init; } = 1.0;
    /// <summary>BatchTopK: rate of the moving average of the smallest kept activation, its inference threshold.</summary>
    public double TopKThresholdLr { get; init; } = 0.01;

    /// <summary>A feature that has not fired for this many steps is dead.</summary>
    public int DeadFeatureWindow { get; init; } = 1000;
    /// <summary>Standard SAEs: re-initialise dead features every this many steps (0: never).</summary>
    public int ResampleEvery { get; init; }

    /// <summary>Keep decoder rows at unit norm; null: for TopK, BatchTopK, JumpReLU and gated SAEs, not for standard ones.</summary>
    public bool? UnitNormDecoder { get; init; }
    /// <summary>Start b_dec at the first batch's mean instead of 0.</summary>
    public bool InitBDecWithMean { get; init; }

    /// <summary>Report progress every this many steps.</summary>
    public int ReportEvery { get; init; } = 100;
    /// <summary>Write a checkpoint to CheckpointFolder/step-N every this many steps (0: never).</summary>
    public int CheckpointEvery { get; init; }
    public string? CheckpointFolder { get; init; }

    /// <summary>The learning rate at a step: linear warm-up from 0 over <see cref="LrWarmupSteps"/>, linear decay to 0 over the last <see cref="LrDecaySteps"/>.</summary>
    public double LearningRateAt(int step)
    {
        double lr = LearningRate;
        if (LrWarmupSteps > 0 && step < LrWarmupSteps) lr *= (step + 1.0) / LrWarmupSteps;
        int decayStart = Steps - LrDecaySteps;
        if (LrDecaySteps > 0 && step >= decayStart) lr *= Math.Max(0.0, 1.0 - (step - decayStart + 1.0) / LrDecaySteps);
        return lr;
    }
}

/// <summary>Where training stands: L0 (mean active features per input), MSE (Σ over d, mean over inputs), explained variance.</summary>
public sealed record SaeTrainingProgress(int Step, int TotalSteps, double Loss, double Mse, double L0, double ExplainedVariance,
    int DeadFeatures, double LearningRate);
