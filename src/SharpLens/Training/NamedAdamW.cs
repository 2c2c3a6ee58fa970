using System.Globalization;
using SharpLens.Loading;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpLens.Training;

/// <summary>
/// AdamW over named parameters, whose state is saved and restored by parameter name, so a checkpoint survives a
/// change in the order a model registers its parameters. TorchSharp's own format (<c>optimizer.bin</c>) is
/// positional: it follows the order AdamW was built with, and silently swaps the moments of same-shaped parameters
/// (W_K, W_V) when that order changes.
/// <para>
/// File (<c>optimizer.safetensors</c>): tensors <c>exp_avg.&lt;name&gt;</c> and <c>exp_avg_sq.&lt;name&gt;</c> (and
/// <c>max_exp_avg_sq.&lt;name&gt;</c> under AMSGrad) per parameter, each of the parameter's shape and dtype;
/// metadata <c>step.&lt;name&gt;</c> is the parameter's AdamW step count as a decimal integer.
/// </para>
/// </summary>
internal sealed class NamedAdamW : IDisposable
{
    const string ExpAvg = "exp_avg.", ExpAvgSq = "exp_avg_sq.", MaxExpAvgSq = "max_exp_avg_sq.", StepKey = "step.";

    /// <summary>The optimised parameters, in the order AdamW holds their state: the one list both are built from.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Parameters { get; }
    public AdamW Optimizer { get; }

    public NamedAdamW(IEnumerable<(string name, Parameter parameter)> parameters, TrainingSettings settings)
        : this(parameters, settings.LearningRate, settings.Beta1, settings.Beta2, settings.WeightDecay) { }

    public NamedAdamW(IEnumerable<(string name, Parameter parameter)> parameters, double learningRate, double beta1, double beta2, double weightDecay)
    {
        (_beta1, _beta2, _weightDecay) = (beta1, beta2, weightDecay);
        Parameters = [.. parameters.Select(p => (p.name, p.parameter))];
        var duplicate = Parameters.GroupBy(p => p.Name).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new ArgumentException($"Parameter '{duplicate.Key}' is listed twice; each optimised parameter needs one name.", nameof(parameters));
        Optimizer = optim.AdamW(Parameters.Select(p => p.Parameter), lr: learningRate, beta1: beta1, beta2: beta2, weight_decay: weightDecay);
    }

    /// <summary>
    /// Called before every <see cref="Step"/> with the parameters, their gradients in place: the place to change a
    /// gradient before AdamW reads it (an SAE drops the part of W_dec's gradient that would only change row lengths).
    /// </summary>
    public Action<IReadOnlyList<(string Name, Parameter Parameter)>>? BeforeStep { get; init; }

    readonly double _beta1, _beta2, _weightDecay;
    const double Epsilon = 1e-8; // TorchSharp's AdamW default, which the optimizer above is built with

    /// <summary>
    /// One AdamW step at this learning rate, after <see cref="BeforeStep"/>: the same operations, in the same order, as
    /// TorchSharp's <c>AdamW.step</c>, on the same state (so checkpoints and results are unchanged), with one difference.
    /// </summary>
    /// <remarks>
    /// TorchSharp passes a <see cref="Scalar"/>'s native handle to libtorch without keeping the managed object alive
    /// for the call, and Scalars belong to no dispose scope. So every implicit one (<c>mul_(0.9)</c>) can be finalized,
    /// and its native value freed, while libtorch is still reading it, whenever a garbage collection runs on another
    /// thread meanwhile: two trainings at once crashed with "Unknown scalar type." that way. Here every Scalar is
    /// held (<c>using</c>) until the operation reading it has returned.
    /// </remarks>
    public void Step(double learningRate)
    {
        foreach (var group in Optimizer.ParamGroups) group.LearningRate = learningRate;
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        BeforeStep?.Invoke(Parameters);
        var states = Optimizer.state_dict().State;
        using Scalar decay = 1 - learningRate * _weightDecay, beta1 = _beta1, beta2 = _beta2,
            gradWeight = 1 - _beta1, squareWeight = 1 - _beta2, epsilon = Epsilon;
        for (int i = 0; i < Parameters.Count; i++)
        {
            var (parameter, state) = (Parameters[i].Parameter, (AdamW.State)states[i]);
            var grad = parameter.grad;
            if (grad is null) continue;
            state.step += 1;
            parameter.mul_(decay);
            double correction1 = 1 - Math.Pow(_beta1, state.step), correction2 = 1 - Math.Pow(_beta2, state.step);
            state.exp_avg.mul_(beta1).add_(grad, alpha: gradWeight);
            state.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value: squareWeight);
            using Scalar rootCorrection2 = Math.Sqrt(correction2), stepSize = -learningRate / correction1;
            var denominator = state.exp_avg_sq.sqrt().div_(rootCorrection2).add_(epsilon, HeldScalars.One);
            parameter.addcdiv_(state.exp_avg, denominator, value: stepSize);
        }
    }

    /// <summary>One parameter's live AdamW state (its step count and moments), by name.</summary>
    public AdamW.State StateOf(string name) =>
        StatesByName().TryGetValue(name, out var state) ? state : throw new ArgumentException($"'{name}' is not an optimised parameter.", nameof(name));

    /// <summary>Each parameter's live AdamW state, by name (TorchSharp lists states in the parameters' order).</summary>
    Dictionary<string, AdamW.State> StatesByName()
    {
        var states = Optimizer.state_dict().State;
        if (states.Count != Parameters.Count)
            throw new SharpLensInternalException($"AdamW holds {states.Count} parameter states but was built with {Parameters.Count} parameters.");
        return Parameters.Select((p, i) => (p.Name, State: (AdamW.State)states[i])).ToDictionary(s => s.Name, s => s.State, StringComparer.Ordinal);
    }

    /// <summary>Writes every parameter's step and moments to a safetensors file (atomically).</summary>
    public void Save(string path)
    {
        var states = StatesByName();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, state) in states)
        {
            tensors.Add(new(ExpAvg + name, state.exp_avg));
            tensors.Add(new(ExpAvgSq + name, state.exp_avg_sq));
            if (state.max_exp_avg_sq is { } max) tensors.Add(new(MaxExpAvgSq + name, max));
            metadata[StepKey + name] = state.step.ToString(CultureInfo.InvariantCulture);
        }
        SafeTensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>
    /// Restores the state saved by <see cref="Save"/>, matching parameters by name. The saved names must be exactly
    /// the optimised parameters' names; the error lists the missing and unexpected ones.
    /// </summary>
    public void Load(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        var saved = file.Metadata.Keys.Where(k => k.StartsWith(StepKey, StringComparison.Ordinal)).Select(k => k[StepKey.Length..]).ToList();
        CheckNames(path, saved);
        using var _ = no_grad();
        foreach (var (name, state) in StatesByName())
        {
            foreach (var (prefix, tensor) in new[] { (ExpAvg, state.exp_avg), (ExpAvgSq, state.exp_avg_sq) })
            {
                if (!file.Contains(prefix + name))
                    throw new CheckpointException(path, prefix + name, $"is missing, though step.{name} is in the metadata; the file is incomplete: resume from an earlier checkpoint.");
                try { file.ReadInto(prefix + name, tensor); }
                catch (ArgumentException e) { throw new CheckpointException(path, prefix + name, $"does not fit parameter '{name}' ({e.Message}); the model's shapes changed since this checkpoint was written: resume with the settings it was trained with, or use another checkpoint folder."); }
            }
            if (state.max_exp_avg_sq is { } max && file.Contains(MaxExpAvgSq + name)) file.ReadInto(MaxExpAvgSq + name, max);
            string step = file.Metadata[StepKey + name];
            state.step = long.TryParse(step, NumberStyles.None, CultureInfo.InvariantCulture, out long s) ? s
                : throw new CheckpointException(path, null, $"metadata step.{name} is '{step}', not a step count; the file is damaged: resume from an earlier checkpoint.");
        }
    }

    /// <summary>
    /// Restores TorchSharp's positional <c>optimizer.bin</c> (checkpoints written before state was keyed by name).
    /// Its states follow the order of the parameters AdamW was built with, which was <c>named_parameters()</c> order
    /// at the time; the checkpoint's <c>model.safetensors</c> lists its tensors in that same order, so it names them.
    /// Runs that optimised only some parameters listed those in that order too.
    /// </summary>
    public void LoadPositional(string optimizerPath, string weightsPath)
    {
        string[] savedOrder;
        Dictionary<string, long[]> shapes;
        using (var weights = SafeTensorsFile.Open(weightsPath))
        {
            savedOrder = [.. weights.Names];
            shapes = savedOrder.ToDictionary(n => n, n => weights.Info(n).Shape, StringComparer.Ordinal);
        }
        long count = PositionalStateCount(optimizerPath);
        var optimised = Parameters.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        string[] names = count == savedOrder.Length ? savedOrder
            : count == optimised.Count ? [.. savedOrder.Where(optimised.Contains)]
            : throw new CheckpointException(optimizerPath, null,
                $"holds AdamW state for {count} parameters, but the checkpoint's model has {savedOrder.Length} and this run optimises {optimised.Count}; " +
                "resume with the settings it was trained with (e.g. the same frozen parameters), or use another checkpoint folder.");
        CheckNames(optimizerPath, names);

        // Load into a scratch AdamW built in the saved order, then hand each state over by name.
        using var scope = NewDisposeScope();
        var dtypes = Parameters.ToDictionary(p => p.Name, p => p.Parameter.dtype, StringComparer.Ordinal);
        var scratch = names.Select(n => new Parameter(zeros(shapes[n], dtype: dtypes[n]))).ToList();
        using var old = optim.AdamW(scratch);
        try { old.load_state_dict(optimizerPath); }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or EndOfStreamException)
        {
            throw new CheckpointException(optimizerPath, null, $"cannot be read as AdamW state for the parameters of {weightsPath} in their saved order ({e.Message}); use another checkpoint folder.");
        }
        var oldStates = old.state_dict().State;
        var live = StatesByName();
        using var _ = no_grad();
        for (int i = 0; i < names.Length; i++)
        {
            var (from, to) = ((AdamW.State)oldStates[i], live[names[i]]);
            to.step = from.step;
            to.exp_avg.copy_(from.exp_avg);
            to.exp_avg_sq.copy_(from.exp_avg_sq);
        }
    }

    /// <summary>The number of parameter states in a TorchSharp optimizer file: after the type name and the group count.</summary>
    static long PositionalStateCount(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            string type = reader.ReadString();
            if (type != nameof(AdamW))
                throw new CheckpointException(path, null, $"holds {type} state, not AdamW's; use another checkpoint folder.");
            reader.Read7BitEncodedInt64(); // parameter groups
            return reader.Read7BitEncodedInt64();
        }
        catch (Exception e) when (e is EndOfStreamException or FormatException)
        {
            throw new CheckpointException(path, null, $"is not a TorchSharp optimizer state file ({e.Message}); use another checkpoint folder.");
        }
    }

    void CheckNames(string path, IReadOnlyCollection<string> saved)
    {
        var expected = Parameters.Select(p => p.Name).ToList();
        var missing = expected.Except(saved, StringComparer.Ordinal).ToList();
        var unexpected = saved.Except(expected, StringComparer.Ordinal).ToList();
        if (missing.Count == 0 && unexpected.Count == 0) return;
        var problems = new List<string>();
        if (missing.Count > 0) problems.Add($"has no AdamW state for {string.Join(", ", missing)}");
        if (unexpected.Count > 0) problems.Add($"has AdamW state for {string.Join(", ", unexpected)}, which this run does not optimise");
        throw new CheckpointException(path, null, string.Join(" and ", problems) +
            "; resume with the settings the checkpoint was trained with (the same model and frozen parameters), or use another checkpoint folder.");
    }

    public void Dispose() => Optimizer.Dispose();
}
