using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using SharpLens.Models;
using SharpLens.Native;
using SharpLens.Saes;
using SharpLens.Saes.Data;
using SharpLens.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// Trains a <see cref="TranscoderSet"/> on a model's activations: per-layer transcoders (PLT) or a cross-layer transcoder
/// (CLT), with the SAE trainer's machinery (<see cref="SaeTrainingSettings"/>: Adam, warm-up and decay, the sparsity
/// warm-up; <see cref="JumpReLUEstimator"/>; the activation store's shuffled batches). One loss covers both kinds,
/// since a PLT is a CLT whose features write to one layer only:
/// <code>
/// x_l   = s_in,l · blocks.l.{feature_input_hook}            y_o = s_out,o · blocks.o.{feature_output_hook}   [batch, d_model]
/// a_l   = σ(x_l W_enc[l]ᵀ + b_enc[l])                                                                          [batch, d_tc]
/// ŷ_o   = Σ_{l ≤ o} a_l W_dec[l][:, o − l] + b_dec[o] (+ x_o S[o])                                               [batch, d_model]
/// loss  = Σ_o mean_batch ‖ŷ_o − y_o‖²  +  λ Σ_l Σ_i mean_batch g(a_l,i ‖W_dec[l]_i‖)      g = identity, or tanh(c ·)
/// </code>
/// ‖W_dec[l]_i‖ is the norm of feature i's decoder rows for all the layers it writes, concatenated (Ameisen et al.
/// 2025); TopK has no sparsity term. The scales s = √d_model / mean ‖·‖ of the first batch put every layer on one
/// footing; when the set is taken out (<see cref="ToSet"/>) they are folded into the weights, so the set reads and
/// writes the model's raw activations as circuit-tracer's files do.
/// <para>
/// With <see cref="SaeTrainingSettings.CheckpointEvery"/> and <see cref="SaeTrainingSettings.CheckpointFolder"/> set,
/// a <c>step-N</c> checkpoint (every parameter, Adam's moments, the scales, steps since each feature fired) is written
/// atomically with a <see cref="CheckpointManifest"/>; <see cref="ResumeLatest"/> continues from the newest one whose
/// files match it, exactly where it stopped.
/// </para>
/// </summary>
public sealed class TranscoderTrainer : IDisposable
{
    const string StateFile = "trainer_state.safetensors", StateJson = "trainer.json", OptimizerFile = "optimizer.safetensors",
        Format = "sharplens-transcoder-trainer/1";

    readonly NamedAdamW _adam;
    readonly Parameter _wEnc, _bEnc, _bDec; // [n_layers, d_tc, d_model], [n_layers, d_tc], [n_layers, d_model]
    readonly Parameter[] _wDec;             // [d_tc, n_out(l), d_model]
    readonly Parameter? _skip;              // [n_layers, d_model, d_model]
    readonly Parameter? _logThreshold;      // [n_layers, d_tc]
    readonly Tensor _stepsSinceFired;       // [n_layers, d_tc]
    Tensor? _inScale, _outScale;            // [n_layers]

    public TranscoderTrainingOptions Options { get; }
    public int NLayers { get; }
    public int DModel { get; }
    public int Step { get; private set; }
    SaeTrainingSettings Settings => Options.Training;

    /// <summary>A fresh set for a model of <paramref name="nLayers"/> layers of width <paramref name="dModel"/>.</summary>
    public TranscoderTrainer(int nLayers, int dModel, TranscoderTrainingOptions options)
    {
        TorchNative.EnsureLoaded();
        Options = options.Validated();
        (NLayers, DModel) = (nLayers, dModel);
        int dTc = options.DTranscoder;
        var generator = new Generator((ulong)options.Seed);
        // Encoder rows of unit norm: on inputs scaled to norm √d_model a pre-activation starts at about unit size.
        var enc = torch.randn(nLayers, dTc, dModel, generator: generator);
        _wEnc = new Parameter(enc / enc.norm(-1, keepdim: true));
        _bEnc = new Parameter(torch.zeros(nLayers, dTc));
        _bDec = new Parameter(torch.zeros(nLayers, dModel));
        _wDec = new Parameter[nLayers];
        for (int l = 0; l < nLayers; l++)
        {
            var dec = torch.randn(dTc, OutputCount(l), dModel, generator: generator);
            _wDec[l] = new Parameter(0.1 * dec / dec.flatten(1).norm(1).view(dTc, 1, 1)); // each feature's decoder, all layers together, of norm 0.1
        }
        if (options.Skip) _skip = new Parameter(torch.zeros(nLayers, dModel, dModel));
        if (options.Activation == TranscoderActivation.JumpRelu)
            _logThreshold = new Parameter(torch.full(nLayers, dTc, Math.Log(Settings.JumpReLUInitThreshold)));
        var named = new List<(string, Parameter)> { ("W_enc", _wEnc), ("b_enc", _bEnc), ("b_dec", _bDec) };
        for (int l = 0; l < nLayers; l++) named.Add(($"W_dec_{l}", _wDec[l]));
        if (_skip is not null) named.Add(("W_skip", _skip));
        if (_logThreshold is not null) named.Add(("log_threshold", _logThreshold));
        _adam = new NamedAdamW(named, Settings.LearningRate, Settings.Beta1, Settings.Beta2, weightDecay: 0);
        _stepsSinceFired = torch.zeros(nLayers, dTc, ScalarType.Int64).DetachFromDisposeScope();
    }

    /// <summary>How many MLP outputs a feature read at <paramref name="layer"/> writes: the rest of the model (CLT) or its own (PLT).</summary>
    int OutputCount(int layer) => Options.CrossLayer ? NLayers - layer : 1;

    /// <summary>Trains until <see cref="SaeTrainingSettings.Steps"/> on batches (input, target), each [batch, n_layers, d_model].</summary>
    public void Train(Func<int, (Tensor Input, Tensor Target)> nextBatch, IProgress<SaeTrainingProgress>? progress = null, int? stopAtStep = null)
    {
        int end = Math.Min(stopAtStep ?? Settings.Steps, Settings.Steps);
        string? root = Settings.CheckpointEvery > 0 ? Settings.CheckpointFolder : null;
        if (root is not null) CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        while (Step < end)
        {
            using var scope = torch.NewDisposeScope();
            var (input, target) = nextBatch(Step);
            var report = TrainStep(input, target);
            if (progress is not null && (Step % Settings.ReportEvery == 0 || Step == Settings.Steps)) progress.Report(report);
            if (root is not null && Step % Settings.CheckpointEvery == 0)
            {
                SaveCheckpoint(Path.Combine(root, $"step-{Step}"));
                if (Options.KeepCheckpoints > 0) // the newest ones; a later run's (steps past this one) are not this run's to delete
                    foreach (var old in CheckpointManifest.StepFolders(root).Where(c => c.Step < Step).SkipLast(Options.KeepCheckpoints - 1))
                        Directory.Delete(old.Folder, recursive: true);
            }
        }
    }

    /// <summary>One Adam step on inputs and targets [batch, n_layers, d_model]; returns the batch's loss and metrics (in the scaled space).</summary>
    public SaeTrainingProgress TrainStep(Tensor input, Tensor target)
    {
        using var scope = torch.NewDisposeScope();
        if (input.dim() != 3 || input.shape[1] != NLayers || input.shape[2] != DModel || !input.shape.SequenceEqual(target.shape))
            throw new AttributionArgumentException("batch", $"inputs {ShapeText.Of(input.shape)} and targets {ShapeText.Of(target.shape)} must both be [batch, n_layers = {NLayers}, d_model = {DModel}].");
        var x = input.to(ScalarType.Float32).transpose(0, 1); // [n_layers, batch, d_model]
        var y = target.to(ScalarType.Float32).transpose(0, 1); // [n_layers, batch, d_model]
        if (_inScale is null)
        {
            // expected_average_only_in, per layer: √d_model / mean ‖·‖ of the first batch; b_dec starts at the scaled targets' mean.
            _inScale = (Math.Sqrt(DModel) / x.norm(-1).mean([1]).clamp_min(1e-8)).DetachFromDisposeScope(); // [n_layers]
            _outScale = (Math.Sqrt(DModel) / y.norm(-1).mean([1]).clamp_min(1e-8)).DetachFromDisposeScope();
            using (torch.no_grad()) _bDec.copy_((y * _outScale.view(-1, 1, 1)).mean([1]));
        }
        x = x * _inScale.view(-1, 1, 1);
        y = y * _outScale!.view(-1, 1, 1);

        double lr = Settings.LearningRateAt(Step);
        double sparsity = Settings.SparsityWarmupSteps > 0 ? Math.Min(1.0, (Step + 1.0) / Settings.SparsityWarmupSteps) : 1.0;
        var (acts, recon) = Forward(x, training: true); // [n_layers, batch, d_tc], [n_layers, batch, d_model]
        var mse = (recon - y).pow(2).sum(-1).mean([1]).sum(); // Σ over layers of each layer's MSE
        var loss = mse;
        if (Options.Activation != TranscoderActivation.TopK)
        {
            var decoderNorms = torch.stack(_wDec.Select(w => w.flatten(1).norm(1))); // [n_layers, d_tc]
            var weighted = acts * decoderNorms.unsqueeze(1); // [n_layers, batch, d_tc]
            if (Options.TanhScale > 0) weighted = (Options.TanhScale * weighted).tanh();
            loss = loss + Settings.L1Coefficient * sparsity * weighted.sum([0, 2]).mean();
        }
        foreach (var (_, p) in _adam.Parameters) p.grad?.zero_();
        loss.backward();
        _adam.Step(lr);
        Step++;

        using var _ = torch.no_grad();
        var active = acts.gt(0); // [n_layers, batch, d_tc]
        double l0 = active.sum().item<long>() / (double)(acts.shape[1] * NLayers);
        var fired = active.any(1); // [n_layers, d_tc]
        var grown = _stepsSinceFired + 1;
        _stepsSinceFired.copy_(torch.where(fired, torch.zeros_like(grown), grown));
        var residual = (y - recon).pow(2).sum();
        var total = (y - y.mean([1], keepdim: true)).pow(2).sum();
        return new SaeTrainingProgress(Step, Settings.Steps, loss.item<float>(), mse.item<float>() / NLayers, l0,
            1 - (residual / total).item<float>(), (int)DeadFeatures().sum().item<long>(), lr);
    }

    /// <summary>Activations [n_layers, batch, d_tc] and reconstructions [n_layers, batch, d_model] of scaled inputs x [n_layers, batch, d_model].</summary>
    (Tensor Acts, Tensor Recon) Forward(Tensor x, bool training)
    {
        var pre = x.bmm(_wEnc.transpose(1, 2)) + _bEnc.unsqueeze(1); // [n_layers, batch, d_tc]
        var acts = Options.Activation switch
        {
            TranscoderActivation.Relu => pre.relu(),
            // The threshold learns through the estimator; at inference the same rule, pre · 1[pre > θ], is the set's.
            TranscoderActivation.JumpRelu => training
                ? JumpReLUEstimator.Apply(pre, _logThreshold!.exp().unsqueeze(1), Settings.JumpReLUBandwidth).Acts
                : pre * pre.gt(_logThreshold!.exp().unsqueeze(1)).to(pre.dtype),
            TranscoderActivation.TopK => TranscoderSet.TopKOf(pre, Options.K),
            _ => throw new SharpLensInternalException($"{Options.Activation} has no case here."),
        };
        long batch = x.shape[1];
        // Each output layer o sums what the features of layers l ≤ o write to it.
        var parts = Enumerable.Range(0, NLayers).Select(_ => new List<Tensor>()).ToArray();
        for (int l = 0; l < NLayers; l++)
        {
            int count = OutputCount(l);
            var written = acts[l].MatMul(_wDec[l].reshape(Options.DTranscoder, -1)).view(batch, count, DModel); // [batch, n_out, d_model]
            for (int j = 0; j < count; j++) parts[l + j].Add(written.select(1, j));
        }
        var recon = torch.stack(Enumerable.Range(0, NLayers).Select(o => parts[o].Aggregate((a, b) => a + b) + _bDec[o])); // [n_layers, batch, d_model]
        if (_skip is not null) recon = recon + x.bmm(_skip); // [n_layers, batch, d_model]
        return (acts, recon);
    }

    /// <summary>
    /// The set as it stands, on the model's own activations: feature activations [batch, n_layers, d_tc] and
    /// reconstructions [batch, n_layers, d_model] of inputs [batch, n_layers, d_model] (scales applied and undone).
    /// </summary>
    public (Tensor Acts, Tensor Recon) Reconstruct(Tensor input)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var x = input.to(ScalarType.Float32).transpose(0, 1); // [n_layers, batch, d_model]
        if (_inScale is not null) x = x * _inScale.view(-1, 1, 1);
        var (acts, recon) = Forward(x, training: false);
        if (_outScale is not null) recon = recon / _outScale.view(-1, 1, 1);
        return (acts.transpose(0, 1).MoveToOuterDisposeScope(), recon.transpose(0, 1).MoveToOuterDisposeScope());
    }

    /// <summary>Features of each layer that have not fired for <see cref="SaeTrainingSettings.DeadFeatureWindow"/> steps: [n_layers, d_tc] bool.</summary>
    public Tensor DeadFeatures() => _stepsSinceFired.ge(Settings.DeadFeatureWindow);

    /// <summary>
    /// The trained set with the input and output scales folded in (W_enc·s_in, W_dec/s_out, b_dec/s_out, S·s_in/s_out;
    /// pre-activations, and so thresholds, unchanged): it reads and writes the model's own activations. A new set, the caller's.
    /// </summary>
    public TranscoderSet ToSet(string? scan = null)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var inScale = _inScale ?? torch.ones(NLayers);
        var outScale = _outScale ?? torch.ones(NLayers);
        var wEnc = _wEnc * inScale.view(-1, 1, 1);           // [n_layers, d_tc, d_model]
        var bDec = _bDec / outScale.view(-1, 1);             // [n_layers, d_model]
        var wDec = Enumerable.Range(0, NLayers).Select(l => (_wDec[l] / outScale.narrow(0, l, OutputCount(l)).view(1, -1, 1)).MoveToOuterDisposeScope()).ToArray();
        var skip = _skip is null ? null : _skip * (inScale / outScale).view(-1, 1, 1); // [n_layers, d_model, d_model]
        var threshold = _logThreshold?.exp();                 // [n_layers, d_tc]
        return new TranscoderSet(Options.CrossLayer, wEnc.MoveToOuterDisposeScope(), _bEnc.detach().clone().MoveToOuterDisposeScope(),
            bDec.MoveToOuterDisposeScope(), wDec, Options.Activation, threshold?.MoveToOuterDisposeScope(),
            Options.Activation == TranscoderActivation.TopK ? Options.K : 0, skip?.MoveToOuterDisposeScope(),
            Options.FeatureInputHook, Options.FeatureOutputHook, scan ?? Options.Scan);
    }

    /// <summary>
    /// Trains a set on <paramref name="model"/> (its weights unprocessed, as the replacement model uses them) reading
    /// <paramref name="contexts"/> (an endless stream, or at least enough for the steps asked), through an activation
    /// store; position 0 and <paramref name="excludedTokenIds"/> are left out.
    /// With <paramref name="resume"/>, training continues from the newest sound checkpoint in the options'
    /// <see cref="SaeTrainingSettings.CheckpointFolder"/> (each refused one is reported to <paramref name="log"/>): the store
    /// first draws, untrained on, the batches the checkpoint had already seen, so given the same contexts the result is
    /// bit for bit that of a run never stopped.
    /// </summary>
    public static TranscoderSet Train(HookedTransformer model, IEnumerable<long[]> contexts, TranscoderTrainingOptions options,
        ActivationStoreOptions? store = null, IProgress<SaeTrainingProgress>? progress = null, int contextsPerCall = 8,
        IReadOnlyCollection<int>? excludedTokenIds = null, bool resume = false, Action<string>? log = null)
    {
        var cfg = model.Config;
        if (cfg.AttnOnly) throw new TranscoderMismatchException($"{cfg.ModelName} is attention-only: it has no MLPs for transcoders to replace.");
        options.Validated();
        string input = ReplacementModel.ResolveHook(model, options.FeatureInputHook, input: true, "the transcoder training options");
        string output = ReplacementModel.ResolveHook(model, options.FeatureOutputHook, input: false, "the transcoder training options");
        options = options with { FeatureInputHook = input, FeatureOutputHook = output };
        store ??= new ActivationStoreOptions { TrainBatchSize = 1024, BufferRows = 16 * 1024, Seed = options.Seed };
        int n = cfg.NLayers, d = cfg.DModel;
        var hooks = Enumerable.Range(0, n).Select(l => $"blocks.{l}.{input}").Concat(Enumerable.Range(0, n).Select(l => $"blocks.{l}.{output}")).ToArray();
        var inner = ModelActivations.Reader(model, hooks);
        // Every layer's input side by side, then every layer's output: one row per token, [batch, pos, n_layers · d_model] each.
        ActivationReader reader = tokens =>
        {
            var acts = inner(tokens);
            try { return [torch.cat(acts[..n], -1), torch.cat(acts[n..], -1)]; }
            finally { foreach (var a in acts) a.Dispose(); }
        };
        excludedTokenIds ??= [.. new int?[] { cfg.BosTokenId, model.TokenizerIfSet?.BosTokenId, model.TokenizerIfSet?.PadTokenId }.OfType<int>().Distinct()];
        using var activations = ActivationStore.FromModel(reader, Saes.Data.Contexts.Batches(contexts, contextsPerCall), store, excludedTokenIds);
        string? checkpoints = options.Training.CheckpointFolder;
        if (resume && string.IsNullOrWhiteSpace(checkpoints))
            throw new AttributionArgumentException("checkpoint_folder", "is not set, so there is nothing to resume from; say where the checkpoints are.");
        var resumed = resume ? ResumeLatest(checkpoints!, n, d, options, log) : null;
        if (resume && resumed is null) log?.Invoke($"No checkpoint to resume in {checkpoints}; training from the start.");
        using var trainer = resumed ?? new TranscoderTrainer(n, d, options);
        ActivationChunk Next(int step) => activations.NextBatch()
            ?? throw new AttributionArgumentException("contexts", $"ran out after {activations.RowsServed} tokens, before step {step + 1} of {options.Training.Steps}; give more text or fewer steps.");
        if (resumed is not null)
        {
            log?.Invoke($"Resumed from the checkpoint at step {resumed.Step}; replaying the {resumed.Step} batches it had trained on.");
            for (int step = 0; step < resumed.Step; step++)
            {
                using var scope = torch.NewDisposeScope();
                Next(step).Dispose();
            }
        }
        trainer.Train(step =>
        {
            using var batch = Next(step);
            long rows = batch.Rows;
            return (batch.Input.view(rows, n, d).clone(), batch.Output!.view(rows, n, d).clone()); // [batch, n_layers, d_model] each
        }, progress);
        return trainer.ToSet();
    }

    /// <summary>
    /// Writes everything resuming needs into <paramref name="folder"/>, whole or not at all (a temporary folder renamed
    /// into place): trainer_state.safetensors (every parameter by its optimiser name, the input and output scales, steps
    /// since each feature fired), optimizer.safetensors (Adam's steps and moments, <see cref="NamedAdamW"/>), trainer.json
    /// (the step and what the set is), and manifest.json last (<see cref="CheckpointManifest"/>).
    /// </summary>
    public void SaveCheckpoint(string folder) => IO.AtomicFile.WriteFolder(folder, temporary =>
    {
        var state = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, p) in _adam.Parameters) state.Add(new(name, p.detach()));
        state.Add(new("steps_since_fired", _stepsSinceFired));
        if (_inScale is not null) { state.Add(new("in_scale", _inScale)); state.Add(new("out_scale", _outScale!)); }
        SafeTensorsWriter.Write(Path.Combine(temporary, StateFile), state);
        _adam.Save(Path.Combine(temporary, OptimizerFile));
        var json = new JsonObject { ["format"] = Format, ["step"] = Step };
        foreach (var (field, value) in Identity(NLayers, DModel, Options)) json[field] = value;
        File.WriteAllText(Path.Combine(temporary, StateJson), json.ToJsonString());
        CheckpointManifest.Write(temporary); // last: the hashes of what is now complete
    });

    /// <summary>What a checkpoint must agree on with the run that resumes it (trainer.json's fields).</summary>
    static IEnumerable<(string Field, JsonNode? Value)> Identity(int nLayers, int dModel, TranscoderTrainingOptions o) =>
    [
        ("n_layers", nLayers), ("d_model", dModel), ("cross_layer", o.CrossLayer), ("activation", o.Activation.ToString()),
        ("d_transcoder", o.DTranscoder), ("k", o.Activation == TranscoderActivation.TopK ? o.K : null), ("skip", o.Skip),
        ("feature_input_hook", o.FeatureInputHook), ("feature_output_hook", o.FeatureOutputHook),
    ];

    /// <summary>
    /// Continues from the newest <c>step-N</c> checkpoint under <paramref name="root"/> whose files match its manifest;
    /// each damaged one is reported to <paramref name="log"/> by file and reason and skipped for the one before. Null
    /// when there is none. A checkpoint of another kind of set (layers, width, activation, hooks) is refused naming the field.
    /// </summary>
    public static TranscoderTrainer? ResumeLatest(string root, int nLayers, int dModel, TranscoderTrainingOptions options, Action<string>? log = null)
    {
        CheckpointManifest.RemoveTemporaries(root); // a killed run's half-written checkpoint
        var latest = CheckpointManifest.Latest(CheckpointManifest.StepFolders(root), c => c.Step, c => c.Folder, log);
        return latest is null ? null : Resume(latest.Folder, nLayers, dModel, options);
    }

    /// <summary>
    /// Continues training from a checkpoint written by <see cref="SaveCheckpoint"/>, exactly where it stopped. A
    /// checkpoint whose files do not match its manifest is refused (a <see cref="CheckpointException"/> naming the file).
    /// </summary>
    public static TranscoderTrainer Resume(string folder, int nLayers, int dModel, TranscoderTrainingOptions options)
    {
        if (CheckpointManifest.Exists(folder)) CheckpointManifest.Verify(folder);
        string jsonPath = Path.Combine(folder, StateJson), statePath = Path.Combine(folder, StateFile);
        if (!File.Exists(jsonPath)) throw new CheckpointException(jsonPath, null, "is missing: this folder is not a transcoder training checkpoint.");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(jsonPath)) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new CheckpointException(jsonPath, null, $"cannot be read as transcoder trainer state ({e.Message}); resume from an earlier checkpoint."); }
        if (json["format"]?.ToJsonString() != JsonValue.Create(Format).ToJsonString())
            throw new CheckpointException(jsonPath, null, $"is not a {Format} file: this folder is not a transcoder training checkpoint.");
        options = options.Validated();
        foreach (var (field, value) in Identity(nLayers, dModel, options))
            if (json[field]?.ToJsonString() != value?.ToJsonString())
                throw new CheckpointException(jsonPath, null, $"field '{field}' is {json[field]?.ToJsonString() ?? "missing"}, but this run asks for {value?.ToJsonString() ?? "none"}: " +
                    "resume with the settings the checkpoint was trained with, or train into another folder.");
        int step = json["step"] is JsonValue v && v.TryGetValue(out int s) && s >= 0 ? s
            : throw new CheckpointException(jsonPath, null, "field 'step' is not a step count; the checkpoint is damaged: resume from an earlier one.");

        var trainer = new TranscoderTrainer(nLayers, dModel, options) { Step = step };
        try
        {
            using var file = SafeTensorsFile.Open(statePath);
            Tensor ReadInto(string name, Tensor destination)
            {
                if (!file.Contains(name)) throw new CheckpointException(statePath, name, "is missing; the checkpoint is incomplete: resume from an earlier one.");
                try { file.ReadInto(name, destination); }
                catch (ArgumentException e) { throw new CheckpointException(statePath, name, $"does not fit this set ({e.Message}); resume with the settings it was trained with."); }
                return destination;
            }
            using (torch.no_grad())
            {
                foreach (var (name, p) in trainer._adam.Parameters) ReadInto(name, p);
                ReadInto("steps_since_fired", trainer._stepsSinceFired);
                if (file.Contains("in_scale"))
                {
                    trainer._inScale = ReadInto("in_scale", torch.empty(nLayers).DetachFromDisposeScope());
                    trainer._outScale = ReadInto("out_scale", torch.empty(nLayers).DetachFromDisposeScope());
                }
            }
            trainer._adam.Load(Path.Combine(folder, OptimizerFile));
            return trainer;
        }
        catch
        {
            trainer.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _adam.Dispose();
        _wEnc.Dispose(); _bEnc.Dispose(); _bDec.Dispose();
        foreach (var w in _wDec) w.Dispose();
        _skip?.Dispose();
        _logThreshold?.Dispose();
        _stepsSinceFired.Dispose();
        _inScale?.Dispose();
        _outScale?.Dispose();
    }
}
