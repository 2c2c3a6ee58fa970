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
/// </summary>
public sealed class TranscoderTrainer : IDisposable
{
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
        while (Step < end)
        {
            using var scope = torch.NewDisposeScope();
            var (input, target) = nextBatch(Step);
            var report = TrainStep(input, target);
            if (progress is not null && (Step % Settings.ReportEvery == 0 || Step == Settings.Steps)) progress.Report(report);
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
            _ => throw new NotSupportedException(Options.Activation.ToString()),
        };
        long batch = x.shape[1];
        // Each output layer o sums what the features of layers l ≤ o write to it.
        var parts = Enumerable.Range(0, NLayers).Select(_ => new List<Tensor>()).ToArray();
        for (int l = 0; l < NLayers; l++)
        {
            int count = OutputCount(l);
            var written = acts[l].matmul(_wDec[l].reshape(Options.DTranscoder, -1)).view(batch, count, DModel); // [batch, n_out, d_model]
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
    /// </summary>
    public static TranscoderSet Train(HookedTransformer model, IEnumerable<long[]> contexts, TranscoderTrainingOptions options,
        ActivationStoreOptions? store = null, IProgress<SaeTrainingProgress>? progress = null, int contextsPerCall = 8,
        IReadOnlyCollection<int>? excludedTokenIds = null)
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
        using var trainer = new TranscoderTrainer(n, d, options);
        trainer.Train(_ =>
        {
            using var batch = activations.NextBatch()
                ?? throw new AttributionArgumentException("contexts", $"ran out after {activations.RowsServed} tokens, before step {trainer.Step + 1} of {options.Training.Steps}; give more text or fewer steps.");
            long rows = batch.Rows;
            return (batch.Input.view(rows, n, d).clone(), batch.Output!.view(rows, n, d).clone()); // [batch, n_layers, d_model] each
        }, progress);
        return trainer.ToSet();
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
