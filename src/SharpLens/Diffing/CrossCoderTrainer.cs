using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Diffing;

/// <summary>
/// Trains a <see cref="CrossCoder"/> with Adam on batches of paired activations [batch, M, d_in], as dictionary_learning's
/// crosscoder trainers do (inputs normalised first; losses in the normalised space, the reconstruction error's norm
/// ‖x^m − x̂^m‖ averaged over tokens and models):
/// <code>
///   L1:        loss = mean ‖x − x̂‖ + λ · mean_n Σ_i f_i c_i         (c_i = the code normalisation, Σ_m ‖W_dec^m_i‖)
///   BatchTopK: loss = mean ‖x − x̂‖ + α · AuxK                        (k·batch largest f_i c_i kept; k annealed from k_max)
///              threshold ← β · threshold + (1 − β) · min{ f_i c_i &gt; 0 }  after ThresholdStart (first value taken as is)
///   AuxK:      the top d_in/2 dead latents reconstruct the residual e: ‖e − Σ_dead f_i W_dec,i‖² / ‖e − ē‖²
/// </code>
/// The decoder bias starts at the first batch's geometric median; gradients are clipped to norm 1.
/// </summary>
/// <remarks>
/// The data seam is a function of the step that returns a batch [batch, M, d_in]: a source that replays a step makes
/// resuming from a checkpoint exact (<see cref="SaveCheckpoint"/>, <see cref="Resume"/>).
/// </remarks>
public sealed class CrossCoderTrainer : IDisposable
{
    const string StateFile = "trainer_state.safetensors", StateJson = "trainer.json";

    readonly List<(string Name, Parameter P, Tensor M, Tensor V)> _adam = [];
    readonly Tensor _tokensSinceFired; // [F] int64
    readonly Tensor _penaltyWeights;   // [F]: 1, or SharedPenaltyScale for designated shared latents
    readonly int _kTarget;

    public CrossCoder CrossCoder { get; }
    public CrossCoderTrainingSettings Settings { get; }
    public int Step { get; private set; }

    public CrossCoderTrainer(CrossCoder crosscoder, CrossCoderTrainingSettings settings)
    {
        CrossCoder = crosscoder;
        Settings = settings.Validated(crosscoder.Config);
        _kTarget = crosscoder.Config.K;
        foreach (var (name, p) in new[] { ("encoder.weight", crosscoder.W_enc), ("encoder.bias", crosscoder.b_enc), ("decoder.weight", crosscoder.W_dec), ("decoder.bias", crosscoder.b_dec) })
            _adam.Add((name, p, torch.zeros_like(p).DetachFromDisposeScope(), torch.zeros_like(p).DetachFromDisposeScope()));
        _tokensSinceFired = torch.zeros(crosscoder.DLatent, ScalarType.Int64).DetachFromDisposeScope();
        _penaltyWeights = torch.ones(crosscoder.DLatent).DetachFromDisposeScope();
        if (settings.SharedLatents > 0)
        {
            _penaltyWeights.narrow(0, 0, settings.SharedLatents).fill_(settings.SharedPenaltyScale);
            TieSharedDecoders();
        }
        if (crosscoder.Config.Architecture == CrossCoderArchitecture.BatchTopK) crosscoder.K = KAt(0);
    }

    /// <summary>Latents that have not fired for <see cref="CrossCoderTrainingSettings.DeadTokensFor"/> tokens: [F] bool.</summary>
    public Tensor DeadLatents(long tokensPerStep) => _tokensSinceFired.ge(Settings.DeadTokensFor(tokensPerStep));

    /// <summary>Trains until <see cref="CrossCoderTrainingSettings.Steps"/> (or <paramref name="stopAtStep"/>); batches are [batch, M, d_in].</summary>
    public void Train(Func<int, Tensor> nextBatch, IProgress<CrossCoderTrainingProgress>? progress = null, int? stopAtStep = null)
    {
        int end = Math.Min(stopAtStep ?? Settings.Steps, Settings.Steps);
        if (Settings.CheckpointEvery > 0 && Settings.CheckpointFolder is { } root) CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        while (Step < end)
        {
            using var scope = torch.NewDisposeScope();
            var report = TrainStep(nextBatch(Step));
            if (progress is not null && (Step % Settings.ReportEvery == 0 || Step == Settings.Steps)) progress.Report(report);
            if (Settings.CheckpointEvery > 0 && Settings.CheckpointFolder is { } folder && Step % Settings.CheckpointEvery == 0)
                SaveCheckpoint(Path.Combine(folder, $"step-{Step}"));
            if (Step % 10 == 0) { GC.Collect(); GC.WaitForPendingFinalizers(); } // autograd's wrappers outside the scope
        }
    }

    /// <summary>k at a step: linear from k_max to k over the annealing steps, rounded (dictionary_learning's schedule).</summary>
    public int KAt(int step)
    {
        int kMax = Settings.KMaxFor(CrossCoder.Config), steps = Settings.KAnnealing;
        if (steps <= 0 || step >= steps) return _kTarget;
        return Math.Max(1, (int)Math.Round(kMax - (kMax - _kTarget) * (double)step / steps));
    }

    /// <summary>dictionary_learning's schedule: linear warm-up, constant, then linear decay to 0 from DecayStart.</summary>
    public double LearningRateAt(int step)
    {
        double lr = Settings.LearningRateFor(CrossCoder.Config);
        int warmup = Settings.Warmup, decay = Settings.Decay, steps = Settings.Steps;
        if (warmup > 0 && step < warmup) return lr * step / warmup;
        if (decay < steps && step >= decay) return lr * (steps - step) / (double)(steps - decay);
        return lr;
    }

    /// <summary>One Adam step on one batch [batch, M, d_in] of raw activations.</summary>
    public CrossCoderTrainingProgress TrainStep(Tensor batch)
    {
        using var scope = torch.NewDisposeScope();
        var cc = CrossCoder;
        var cfg = cc.Config;
        if (batch.dim() != 3 || batch.shape[1] != cc.NModels || batch.shape[2] != cc.DIn)
            throw new ArgumentException($"A crosscoder batch is [batch, n_models = {cc.NModels}, d_in = {cc.DIn}]; got {ShapeText.Of(batch.shape)}.", nameof(batch));
        var raw = batch.to(cc.W_enc.dtype);
        if (Step == 0 && Settings.NormalizeActivations && !cc.HasNormalizer)
            cc.SetNormalizer(raw.mean([0]), raw.std(0, unbiased: false), Settings.TargetRms);
        var x = cc.Normalize(raw); // [n, M, d]
        if (Step == 0)
            using (torch.no_grad()) cc.b_dec.copy_(GeometricMedian(x));
        long n = x.shape[0];
        bool topK = cfg.Architecture == CrossCoderArchitecture.BatchTopK;
        if (topK) cc.K = KAt(Step);

        var postRelu = cc.EncodeReLU(x); // [n, F]
        var code = cc.CodeNormalizationWeights(); // [F]
        var scaled = postRelu * code; // [n, F]
        var f = topK ? CrossCoder.BatchTopK(postRelu, scaled, cc.K) : postRelu; // [n, F]
        var xHat = cc.DecodeNormalized(f); // [n, M, d]
        var e = x - xHat; // [n, M, d]
        var mse = e.pow(2).sum(-1).mean();
        var reconstruction = Settings.UseMseLoss ? mse : e.pow(2).sum(-1).add(1e-12).sqrt().mean(); // ‖x^m − x̂^m‖, mean over tokens and models
        double lr = LearningRateAt(Step);
        Tensor loss;
        if (topK)
            loss = reconstruction + Settings.AuxKAlpha * AuxK(e.detach(), postRelu, scaled.detach(), n);
        else
        {
            double lambda = Settings.L1Penalty * (Settings.SparsityWarmup > 0 ? Math.Min(1.0, (Step + 1.0) / Settings.SparsityWarmup) : 1.0);
            loss = reconstruction + lambda * (f * code * _penaltyWeights).sum(-1).mean(); // λ Σ_i f_i c_i, mean over tokens
        }
        foreach (var (_, p, _, _) in _adam) p.grad?.zero_();
        loss.backward();
        AdamStep(lr);

        int dead;
        double l0;
        using (torch.no_grad())
        {
            var active = f.gt(0); // [n, F]
            l0 = active.sum().item<long>() / (double)n;
            var fired = active.any(0); // [F]
            _tokensSinceFired.add_(n).masked_fill_(fired, 0);
            if (topK && Step > Settings.ThresholdStart) UpdateThreshold(f.detach() * code.detach());
            dead = (int)DeadLatents(n).sum().item<long>();
        }
        Step++;

        using var _ = torch.no_grad();
        var residual = e.detach().pow(2).sum([0, 2]); // [M]
        var total = (x - x.mean([0], keepdim: true)).pow(2).sum([0, 2]); // [M]
        var explained = (1 - residual / total).data<float>().ToArray().Select(v => (double)v).ToArray();
        return new CrossCoderTrainingProgress(Step, Settings.Steps, loss.item<float>(), mse.item<float>(), l0, explained, dead,
            cc.K, cc.Threshold.item<float>(), lr);
    }

    /// <summary>dictionary_learning's AuxK: the top d_in/2 dead latents (by code-normalised activation) reconstruct the residual, normalised by its variance.</summary>
    Tensor AuxK(Tensor residual, Tensor postRelu, Tensor scaled, long n)
    {
        var dead = DeadLatents(n); // [F]
        long numDead = dead.sum().item<long>();
        if (numDead == 0) return torch.zeros(1, dtype: postRelu.dtype).squeeze();
        int kAux = (int)Math.Min(CrossCoder.DIn / 2, numDead);
        var (_, indices) = torch.where(dead.unsqueeze(0), scaled, torch.full_like(scaled, double.NegativeInfinity)).topk(kAux, dim: -1, sorted: false); // [n, k_aux]
        var auxActs = torch.zeros_like(postRelu).scatter(-1, indices, postRelu.gather(-1, indices)); // [n, F]
        var recon = auxActs.MatMul(CrossCoder.W_dec).transpose(0, 1).reshape(n, -1); // [n, M · d], no decoder bias
        var flat = residual.reshape(n, -1); // [n, M · d]
        var l2 = (flat - recon).pow(2).sum(-1).mean();
        var denominator = (flat - flat.mean([0], keepdim: true)).pow(2).sum(-1).mean();
        return (l2 / denominator).nan_to_num(0.0);
    }

    void UpdateThreshold(Tensor fScaled)
    {
        var positive = fScaled.gt(0);
        double smallest = positive.any().item<bool>() ? fScaled.masked_select(positive).min().to(ScalarType.Float64).item<double>() : 0.0;
        var threshold = CrossCoder.Threshold;
        double current = threshold.item<float>();
        threshold.fill_(current < 0 ? smallest : Settings.Beta * current + (1 - Settings.Beta) * smallest);
    }

    /// <summary>Weiszfeld's iteration per model: the point minimising the summed distance to the batch's activations, [M, d].</summary>
    static Tensor GeometricMedian(Tensor x, int iterations = 50)
    {
        using var _ = torch.no_grad();
        var median = x.mean([0]); // [M, d]
        for (int i = 0; i < iterations; i++)
        {
            var weights = 1 / (x - median).norm(-1).clamp_min(1e-6); // [n, M]
            median = (weights.unsqueeze(-1) * x).sum(dim: 0) / weights.sum(dim: 0).unsqueeze(-1); // [M, d]
        }
        return median;
    }

    void AdamStep(double lr)
    {
        using var _ = torch.no_grad();
        if (Settings.MaxGradNorm > 0)
        {
            var grads = _adam.Select(a => a.P.grad).OfType<Tensor>().ToList();
            double norm = Math.Sqrt(grads.Sum(g => g.pow(2).sum().item<float>()));
            using Scalar clip = Settings.MaxGradNorm / (norm + 1e-6);
            if (norm > Settings.MaxGradNorm) foreach (var g in grads) g.mul_(clip);
        }
        int t = Step + 1;
        double b1 = Settings.Beta1, b2 = Settings.Beta2;
        double correction1 = 1 - Math.Pow(b1, t), correction2 = 1 - Math.Pow(b2, t);
        // Scalars held until the operations reading them return: TorchSharp does not keep one alive through a native
        // call, so a collection on another thread could free it mid-operation (see NamedAdamW.Step).
        using Scalar beta1 = b1, beta2 = b2, gradWeight = 1 - b1, squareWeight = 1 - b2, rootCorrection2 = Math.Sqrt(correction2),
            epsilon = 1e-8, stepSize = -lr / correction1;
        foreach (var (_, p, m, v) in _adam)
        {
            var g = p.grad;
            if (g is null) continue;
            m.mul_(beta1).add_(g, alpha: gradWeight);
            v.mul_(beta2).addcmul_(g, g, value: squareWeight);
            using var denominator = v.sqrt().div_(rootCorrection2).add_(epsilon, HeldScalars.One);
            p.addcdiv_(m, denominator, value: stepSize);
        }
        if (Settings.SharedLatents > 0) TieSharedDecoders();
    }

    /// <summary>Designated shared latents keep one decoder for all models: each step ends with their rows replaced by the models' mean.</summary>
    void TieSharedDecoders()
    {
        using var _ = torch.no_grad();
        var shared = CrossCoder.W_dec.narrow(1, 0, Settings.SharedLatents); // [M, S, d]
        shared.copy_(shared.mean([0], keepdim: true).expand_as(shared));
    }

    /// <summary>
    /// Writes the crosscoder as a dictionary_learning folder plus what resuming needs: trainer.json (step) and
    /// trainer_state.safetensors (Adam moments, tokens since each latent fired).
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
        CrossCoderFiles.Save(CrossCoder, folder);
        var state = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, _, m, v) in _adam)
        {
            state.Add(new($"exp_avg.{name}", m));
            state.Add(new($"exp_avg_sq.{name}", v));
        }
        state.Add(new("tokens_since_fired", _tokensSinceFired));
        SafeTensorsWriter.Write(Path.Combine(folder, StateFile), state);
        var json = new JsonObject { ["step"] = Step, ["architecture"] = CrossCoder.Config.Architecture.ToString(), ["k_target"] = _kTarget };
        IO.AtomicFile.WriteAllText(Path.Combine(folder, StateJson), json.ToJsonString());
    }

    /// <summary>
    /// Continues from the newest <c>step-N</c> checkpoint under <paramref name="root"/> whose files match its manifest;
    /// each damaged one is reported to <paramref name="log"/> and skipped for the one before. Null when there is none.
    /// </summary>
    public static CrossCoderTrainer? ResumeLatest(string root, CrossCoderTrainingSettings settings, Action<string>? log = null)
    {
        CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        var latest = CheckpointManifest.Latest(CheckpointManifest.StepFolders(root), c => c.Step, c => c.Folder, log);
        return latest is null ? null : Resume(latest.Folder, settings);
    }

    /// <summary>
    /// Continues training from a checkpoint written by <see cref="SaveCheckpoint"/>, exactly where it stopped. A
    /// checkpoint whose files do not match its manifest is refused (a <see cref="Loading.CheckpointException"/> naming the file).
    /// </summary>
    public static CrossCoderTrainer Resume(string folder, CrossCoderTrainingSettings settings)
    {
        if (CheckpointManifest.Exists(folder)) CheckpointManifest.Verify(folder);
        string jsonPath = Path.Combine(folder, StateJson);
        if (!File.Exists(jsonPath)) throw new CrossCoderFileException(jsonPath, null, "missing: this folder is a crosscoder but not a training checkpoint (no trainer.json).");
        var json = JsonNode.Parse(File.ReadAllText(jsonPath))!.AsObject();
        var loaded = CrossCoderFiles.Load(folder);
        // The file stores the k of the step it was saved at; training anneals towards the target k.
        var crosscoder = loaded;
        int kTarget = (int)json["k_target"]!;
        if (loaded.Config.Architecture == CrossCoderArchitecture.BatchTopK && loaded.Config.K != kTarget)
        {
            crosscoder = new CrossCoder(loaded.Config with { K = kTarget });
            using (torch.no_grad())
            {
                foreach (var (dst, src) in crosscoder.Parameters().Zip(loaded.Parameters())) dst.copy_(src);
                crosscoder.LoadNormalizer(loaded.TargetRms, loaded.ActivationMean, loaded.ActivationStd, loaded.ActivationGlobalScale);
                crosscoder.Threshold.copy_(loaded.Threshold);
            }
            loaded.Dispose();
        }
        var trainer = new CrossCoderTrainer(crosscoder, settings) { Step = (int)json["step"]! };
        crosscoder.K = trainer.KAt(trainer.Step);
        using var file = SafeTensorsFile.Open(Path.Combine(folder, StateFile));
        using (torch.no_grad())
        {
            foreach (var (name, _, m, v) in trainer._adam)
            {
                file.ReadInto($"exp_avg.{name}", m);
                file.ReadInto($"exp_avg_sq.{name}", v);
            }
            file.ReadInto("tokens_since_fired", trainer._tokensSinceFired);
        }
        return trainer;
    }

    public void Dispose()
    {
        foreach (var (_, _, m, v) in _adam) { m.Dispose(); v.Dispose(); }
        _tokensSinceFired.Dispose();
        _penaltyWeights.Dispose();
    }
}
