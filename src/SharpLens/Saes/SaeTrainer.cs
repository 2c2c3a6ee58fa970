using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Saes;

/// <summary>
/// Trains an SAE or transcoder on batches of activations with Adam. Loss per architecture, as SAELens computes it
/// (MSE = Σ over dimensions, mean over inputs):
/// standard / transcoder: MSE + λ Σ_i f_i ‖W_dec,i‖; gated: that with the gate's ReLU, plus the gate's own
/// reconstruction through a frozen decoder; TopK / BatchTopK: MSE + AuxK (dead features reconstruct the residual);
/// JumpReLU: MSE + λ₀ L0, the threshold learnt through a rectangle-kernel straight-through estimator.
/// </summary>
/// <remarks>
/// The data seam: a function called with the step number that returns a batch [batch, d_in] (and, for transcoders,
/// the target [batch, d_out]). A source that can replay a step makes resumption from a checkpoint exact.
/// </remarks>
public sealed class SaeTrainer : IDisposable
{
    const string StateFile = "trainer_state.safetensors", StateJson = "trainer.json", OptimizerFile = "optimizer.safetensors";

    readonly NamedAdamW _adam;
    readonly Parameter? _logThreshold; // JumpReLU trains log θ; the SAE's threshold follows it
    Tensor _stepsSinceFired;            // [d_sae]
    readonly bool _unitNorm;

    public Sae Sae { get; }
    /// <summary>
    /// expected_average_only_in: √d_in / mean ‖x‖ of the first batch. Inputs are scaled by it while training; when training
    /// ends it is folded into the weights (W_enc · s, W_dec / s, b_dec / s) and the config says "none", as SAELens saves it.
    /// </summary>
    public double? NormScalingFactor { get; private set; }
    bool _folded;
    public SaeTrainingSettings Settings { get; }
    public int Step { get; private set; }
    /// <summary>BatchTopK: the moving average of the smallest kept activation, which becomes the inference threshold.</summary>
    public double TopKThreshold { get; private set; }

    /// <summary>Prepares to train <paramref name="sae"/> from its current weights (decoder rows normalized where the architecture keeps them so).</summary>
    public SaeTrainer(Sae sae, SaeTrainingSettings settings) : this(sae, settings, fresh: true) { }

    SaeTrainer(Sae sae, SaeTrainingSettings settings, bool fresh)
    {
        Sae = sae;
        Settings = settings;
        var arch = sae.Config.Architecture;
        _unitNorm = settings.UnitNormDecoder ?? arch is SaeArchitecture.TopK or SaeArchitecture.BatchTopK or SaeArchitecture.JumpReLU or SaeArchitecture.Gated;
        using (torch.no_grad())
        {
            if (_unitNorm && fresh) sae.W_dec.div_(sae.W_dec.norm(1, keepdim: true));
            if (arch == SaeArchitecture.JumpReLU)
            {
                _logThreshold = new Parameter(torch.full(sae.Config.DSae, Math.Log(settings.JumpReLUInitThreshold), dtype: sae.W_enc.dtype));
                if (fresh) sae.threshold!.copy_(_logThreshold.exp());
            }
        }
        var optimised = new List<(string, Parameter)>();
        foreach (var (name, p) in sae.named_parameters())
        {
            if (name == "threshold") { p.requires_grad = false; continue; }
            optimised.Add((name, p));
        }
        if (_logThreshold is not null) optimised.Add(("log_threshold", _logThreshold));
        // Adam, as SAELens trains: no weight decay. With unit-norm decoder rows, the part of W_dec's gradient that
        // would only change a row's length is dropped before each step.
        _adam = new NamedAdamW(optimised, settings.LearningRate, settings.Beta1, settings.Beta2, weightDecay: 0)
        {
            BeforeStep = _unitNorm ? ProjectDecoderGradient : null,
        };
        _stepsSinceFired = torch.zeros(sae.Config.DSae, ScalarType.Int64).DetachFromDisposeScope();
    }

    /// <summary>Trains until <see cref="SaeTrainingSettings.Steps"/> (or <paramref name="stopAtStep"/>) on inputs that are their own targets.</summary>
    public void Train(Func<int, Tensor> nextBatch, IProgress<SaeTrainingProgress>? progress = null, int? stopAtStep = null) =>
        Train(step => (nextBatch(step), (Tensor?)null), progress, stopAtStep);

    /// <summary>Trains a transcoder: each batch is (input [batch, d_in], target [batch, d_out]).</summary>
    public void Train(Func<int, (Tensor Input, Tensor? Target)> nextBatch, IProgress<SaeTrainingProgress>? progress = null, int? stopAtStep = null)
    {
        int end = Math.Min(stopAtStep ?? Settings.Steps, Settings.Steps);
        if (Settings.CheckpointEvery > 0 && Settings.CheckpointFolder is { } root) CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        while (Step < end)
        {
            using var scope = torch.NewDisposeScope();
            var (input, target) = nextBatch(Step);
            var report = TrainStep(input, target);
            if (progress is not null && (Step % Settings.ReportEvery == 0 || Step == Settings.Steps)) progress.Report(report);
            if (Settings.CheckpointEvery > 0 && Settings.CheckpointFolder is { } folder && Step % Settings.CheckpointEvery == 0)
                SaveCheckpoint(Path.Combine(folder, $"step-{Step}"));
        }
        if (Step == Settings.Steps) FoldNormScalingFactor();
    }

    /// <summary>Folds <see cref="NormScalingFactor"/> into the weights so the SAE reads unscaled inputs (done when training ends).</summary>
    public void FoldNormScalingFactor()
    {
        if (NormScalingFactor is not { } s || _folded) return;
        using (torch.no_grad())
        {
            // (s·x − b_dec) W_enc = (x − b_dec/s)(s·W_enc): the same pre-activations, so thresholds stay as they are.
            Sae.W_enc.mul_(s);
            Sae.W_dec.div_(s);
            Sae.b_dec.div_(s);
        }
        Sae.Config = Sae.Config with { NormalizeActivations = ActivationNormalization.None };
        _folded = true;
    }

    /// <summary>One Adam step on one batch; returns the batch's loss and metrics.</summary>
    public SaeTrainingProgress TrainStep(Tensor input, Tensor? target = null)
    {
        using var scope = torch.NewDisposeScope();
        var cfg = Sae.Config;
        if (cfg.IsTranscoder && target is null) throw new ArgumentException("A transcoder trains on (input, target) pairs; the batch has no target.", nameof(target));
        var x = input.to(Sae.W_enc.dtype);
        var y = target?.to(Sae.W_enc.dtype) ?? x;
        if (cfg.NormalizeActivations == ActivationNormalization.ExpectedAverageOnlyIn && !cfg.IsTranscoder)
        {
            if (_folded) throw new SharpLensException("Training has finished and the norm scaling factor is folded into the weights; start a new trainer to train further.");
            NormScalingFactor ??= Math.Sqrt(cfg.DIn) / x.norm(-1).mean().item<float>();
            x = x * NormScalingFactor.Value;
            y = x;
        }
        if (Step == 0 && Settings.InitBDecWithMean)
            using (torch.no_grad()) Sae.b_dec.copy_(y.mean([0]));

        double lr = Settings.LearningRateAt(Step);
        double sparsity = Settings.SparsityWarmupSteps > 0 ? Math.Min(1.0, (Step + 1.0) / Settings.SparsityWarmupSteps) : 1.0;
        var (loss, mse, acts, output, pre) = Losses(x, y, sparsity);
        double l0;
        foreach (var (_, p) in _adam.Parameters) p.grad?.zero_();
        loss.backward();
        _adam.Step(lr);
        using (torch.no_grad())
        {
            if (_unitNorm) Sae.W_dec.div_(Sae.W_dec.norm(1, keepdim: true));
            if (_logThreshold is not null) Sae.threshold!.copy_(_logThreshold.exp());
        }

        using (torch.no_grad())
        {
            var active = acts.gt(0); // [batch, d_sae]
            l0 = active.sum().item<long>() / (double)acts.shape[0];
            var fired = active.any(0); // [d_sae]
            var grown = _stepsSinceFired + 1;
            _stepsSinceFired.copy_(torch.where(fired, torch.zeros_like(grown), grown));
            if (cfg.Architecture == SaeArchitecture.BatchTopK) UpdateTopKThreshold(acts);
        }
        Step++;
        if (Settings.ResampleEvery > 0 && cfg.Architecture == SaeArchitecture.Standard && Step % Settings.ResampleEvery == 0)
            ResampleDeadFeatures(x, output);

        using var _ = torch.no_grad();
        var residual = (y - output).pow(2).sum();
        var total = (y - y.mean([0], keepdim: true)).pow(2).sum();
        return new SaeTrainingProgress(Step, Settings.Steps, loss.item<float>(), mse.item<float>(),
            l0, 1 - (residual / total).item<float>(),
            (int)DeadFeatures().sum().item<long>(), lr);
    }

    /// <summary>Features that have not fired for <see cref="SaeTrainingSettings.DeadFeatureWindow"/> steps: [d_sae] bool.</summary>
    public Tensor DeadFeatures() => _stepsSinceFired.ge(Settings.DeadFeatureWindow);

    (Tensor Loss, Tensor Mse, Tensor Acts, Tensor Output, Tensor Pre) Losses(Tensor x, Tensor y, double sparsity)
    {
        var sae = Sae;
        var cfg = sae.Config;
        var (sae_in, norm) = sae.ProcessInput(x);
        // The SAE's own encoder; only what exists in training alone is written here.
        var (pre, gate) = sae.PreActivations(sae_in); // [batch, d_sae]
        Tensor acts, extra;
        var decoderNorms = sae.W_dec.norm(1); // [d_sae]
        switch (cfg.Architecture)
        {
            case SaeArchitecture.Gated:
            {
                acts = sae.Nonlinearity(pre, gate);
                // The gate's auxiliary loss: its ReLU is sparse, and alone (through a frozen decoder) reconstructs the input.
                var gateActs = gate!.relu();
                var viaGate = gateActs.MatMul(sae.W_dec.detach()) + sae.b_dec.detach(); // [batch, d_in]
                extra = Settings.L1Coefficient * sparsity * (gateActs * decoderNorms).sum(-1).mean()
                        + (viaGate - x).pow(2).sum(-1).mean();
                break;
            }
            case SaeArchitecture.JumpReLU:
            {
                // The straight-through estimator: the threshold θ = exp(log θ) is learnt through a rectangle kernel.
                var (jumped, rowL0) = JumpReLUEstimator.Apply(pre, _logThreshold!.exp(), Settings.JumpReLUBandwidth); // [batch, d_sae], [batch]
                acts = jumped;
                var l0 = rowL0.mean();
                extra = Settings.L0Coefficient * sparsity * l0;
                break;
            }
            case SaeArchitecture.BatchTopK:
                acts = BatchTopK(pre, cfg.K); // batch-wide top-k while training; the threshold it learns is the inference rule
                extra = torch.zeros(1, dtype: pre.dtype).squeeze();
                break;
            default:
                acts = sae.Nonlinearity(pre, gate);
                extra = cfg.Architecture is SaeArchitecture.TopK
                    ? torch.zeros(1, dtype: pre.dtype).squeeze()
                    : Settings.L1Coefficient * sparsity * acts.MatMul(decoderNorms).mean(); // Σ_i f_i ‖W_dec,i‖, mean over inputs
                break;
        }
        var output = sae.DecodeWith(acts, norm, x); // [batch, d_out]
        var mse = (output - y).pow(2).sum(-1).mean();
        if (cfg.Architecture is SaeArchitecture.TopK or SaeArchitecture.BatchTopK)
            extra = extra + Settings.AuxKCoefficient * AuxKLoss(y, output, pre);
        return (mse + extra, mse, acts, output, pre);
    }

    /// <summary>Keeps the k × batch largest ReLU'd pre-activations over the whole batch.</summary>
    static Tensor BatchTopK(Tensor pre, int k)
    {
        var acts = pre.relu();
        var flat = acts.flatten(); // [batch * d_sae]
        var (values, indices) = flat.topk((int)Math.Min(flat.shape[0], k * pre.shape[0]));
        return torch.zeros_like(flat).scatter(0, indices, values).reshape(acts.shape); // [batch, d_sae]
    }

    /// <summary>SAELens's AuxK: the top d_in/2 dead features reconstruct what the SAE missed, scaled by min(dead/k_aux, 1).</summary>
    Tensor AuxKLoss(Tensor y, Tensor output, Tensor pre)
    {
        var dead = DeadFeatures();
        long numDead = dead.sum().item<long>();
        if (numDead == 0) return torch.zeros(1, dtype: pre.dtype).squeeze();
        long kAux = Sae.Config.DIn / 2;
        double scale = Math.Min(numDead / (double)kAux, 1.0);
        kAux = Math.Min(kAux, numDead);
        var residual = (y - output).detach(); // [batch, d_out]
        var masked = torch.where(dead, pre, torch.full_like(pre, double.NegativeInfinity)); // [batch, d_sae]
        var (values, indices) = masked.topk((int)kAux, dim: -1);
        var auxActs = torch.zeros_like(pre).scatter(-1, indices, values.relu()); // [batch, d_sae]
        var recons = auxActs.MatMul(Sae.W_dec); // [batch, d_out]
        return scale * (recons - residual).pow(2).sum(-1).mean();
    }

    void UpdateTopKThreshold(Tensor acts)
    {
        var positive = acts.gt(0);
        if (!positive.any().item<bool>()) return;
        double smallest = acts.masked_select(positive).min().to(ScalarType.Float64).item<double>();
        TopKThreshold = (1 - Settings.TopKThresholdLr) * TopKThreshold + Settings.TopKThresholdLr * smallest;
        Sae.threshold!.fill_(TopKThreshold);
    }

    /// <summary>W_dec's gradient less its component along each (unit) row: the step then only turns rows, never stretches them.</summary>
    static void ProjectDecoderGradient(IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        foreach (var (name, p) in parameters)
            if (name == "W_dec" && p.grad is { } g) g.sub_((g * p).sum(1, keepdim: true) * p);
    }

    /// <summary>
    /// Re-initialises dead features of a standard SAE as Anthropic's resampling does: each takes the direction of an input
    /// drawn with probability ∝ its squared reconstruction error; its encoder column is that direction scaled to 0.2 × the
    /// mean alive encoder norm, its bias 0, and its Adam moments are reset.
    /// </summary>
    void ResampleDeadFeatures(Tensor x, Tensor output)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var dead = DeadFeatures().nonzero().flatten(); // [n_dead]
        long n = dead.shape[0];
        if (n == 0) return;
        var errors = (x - output.detach()).pow(2).sum(-1); // [batch]
        if (errors.sum().item<double>() <= 0) return;
        var picks = torch.multinomial(errors, n, replacement: true); // [n_dead]
        var directions = x[picks] - (Sae.Config.ApplyBDecToInput ? Sae.b_dec : torch.zeros_like(Sae.b_dec)); // [n_dead, d_in]
        directions = directions / directions.norm(1, keepdim: true).clamp_min(1e-8);
        var alive = DeadFeatures().logical_not();
        double encoderNorm = alive.any().item<bool>() ? Sae.W_enc.norm(0).masked_select(alive).mean().item<double>() : 1.0;
        Sae.W_dec.index_copy_(0, dead, directions * Sae.W_dec.norm(1).masked_select(alive).mean().clamp_min(1e-8));
        Sae.W_enc.index_copy_(1, dead, (directions * (0.2 * encoderNorm)).t());
        Sae.b_enc!.index_fill_(0, dead, 0.0);
        foreach (var (name, dim) in new[] { ("W_dec", 0), ("b_enc", 0), ("W_enc", 1) })
        {
            var state = _adam.StateOf(name);
            state.exp_avg.index_fill_(dim, dead, 0.0);
            state.exp_avg_sq.index_fill_(dim, dead, 0.0);
        }
        _stepsSinceFired.index_fill_(0, dead, 0);
    }

    /// <summary>
    /// Writes the SAE as an SAELens folder plus what resuming needs: trainer.json (step, architecture, k, BatchTopK
    /// threshold) and trainer_state.safetensors (Adam moments, JumpReLU's log θ, steps since each feature fired).
    /// </summary>
    /// <remarks>The folder is written whole or not at all (a temporary folder renamed into place), with a manifest.json of
    /// every file's hash last (<see cref="CheckpointManifest"/>).</remarks>
    public void SaveCheckpoint(string folder) => IO.AtomicFile.WriteFolder(folder, temporary =>
    {
        WriteCheckpoint(temporary);
        CheckpointManifest.Write(temporary);
    });

    void WriteCheckpoint(string folder)
    {
        SaeFiles.Save(Sae, folder);
        _adam.Save(Path.Combine(folder, OptimizerFile));
        var state = new List<KeyValuePair<string, Tensor>>();
        if (_logThreshold is not null) state.Add(new("log_threshold", _logThreshold.detach()));
        state.Add(new("steps_since_fired", _stepsSinceFired));
        SafeTensorsWriter.Write(Path.Combine(folder, StateFile), state);
        var json = new JsonObject
        {
            ["step"] = Step, ["architecture"] = Sae.Config.Architecture.ToString(), ["k"] = Sae.Config.K,
            ["topk_threshold"] = TopKThreshold, ["norm_scaling_factor"] = NormScalingFactor,
        };
        IO.AtomicFile.WriteAllText(Path.Combine(folder, StateJson), json.ToJsonString());
    }

    /// <summary>
    /// Continues from the newest <c>step-N</c> checkpoint under <paramref name="root"/> (as <see cref="SaeTrainingSettings.CheckpointFolder"/>
    /// writes them) whose files match its manifest; each damaged one is reported to <paramref name="log"/> and skipped
    /// for the one before. Null when there is none.
    /// </summary>
    public static SaeTrainer? ResumeLatest(string root, SaeTrainingSettings settings, Action<string>? log = null)
    {
        CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        var latest = CheckpointManifest.Latest(CheckpointManifest.StepFolders(root), c => c.Step, c => c.Folder, log);
        return latest is null ? null : Resume(latest.Folder, settings);
    }

    /// <summary>
    /// Continues training from a checkpoint written by <see cref="SaveCheckpoint"/>, exactly where it stopped. A
    /// checkpoint whose files do not match its manifest is refused (a <see cref="Loading.CheckpointException"/> naming the file).
    /// </summary>
    public static SaeTrainer Resume(string folder, SaeTrainingSettings settings)
    {
        if (CheckpointManifest.Exists(folder)) CheckpointManifest.Verify(folder);
        string jsonPath = Path.Combine(folder, StateJson);
        if (!File.Exists(jsonPath)) throw new SaeFileException(jsonPath, null, "missing: this folder is an SAE but not a training checkpoint (no trainer.json).");
        var json = JsonNode.Parse(File.ReadAllText(jsonPath))!.AsObject();
        var loaded = SaeFiles.Load(folder);
        var architecture = Enum.Parse<SaeArchitecture>((string)json["architecture"]!);
        var sae = loaded;
        if (architecture != loaded.Config.Architecture)
        {
            // BatchTopK is saved as JumpReLU for inference; training goes on as BatchTopK.
            sae = new Sae(loaded.Config with { Architecture = architecture, K = (int)json["k"]! });
            using (torch.no_grad())
                foreach (var (name, p) in sae.named_parameters()) p.copy_(loaded.get_parameter(name)!);
            loaded.Dispose();
        }
        var trainer = new SaeTrainer(sae, settings, fresh: false) { Step = (int)json["step"]!, TopKThreshold = (double)json["topk_threshold"]!, NormScalingFactor = (double?)json["norm_scaling_factor"] };
        using var file = SafeTensorsFile.Open(Path.Combine(folder, StateFile));
        string optimizer = Path.Combine(folder, OptimizerFile);
        if (File.Exists(optimizer)) trainer._adam.Load(optimizer);
        else
            // Checkpoints written before the trainer used NamedAdamW kept the moments (same names) in trainer_state.
            using (torch.no_grad())
                foreach (var (name, _) in trainer._adam.Parameters)
                {
                    var s = trainer._adam.StateOf(name);
                    file.ReadInto($"exp_avg.{name}", s.exp_avg);
                    file.ReadInto($"exp_avg_sq.{name}", s.exp_avg_sq);
                    s.step = trainer.Step;
                }
        using (torch.no_grad())
        {
            if (trainer._logThreshold is not null)
            {
                file.ReadInto("log_threshold", trainer._logThreshold);
                sae.threshold!.copy_(trainer._logThreshold.exp());
            }
            file.ReadInto("steps_since_fired", trainer._stepsSinceFired);
        }
        return trainer;
    }

    public void Dispose()
    {
        _adam.Dispose();
        _logThreshold?.Dispose();
        _stepsSinceFired.Dispose();
    }
}
