using SharpLens.Hooks;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// Runs a validated plan on a model: the invokes become one batch, one hook is attached at each hook point the plan
/// touches (and nowhere else, so untouched attention keeps its fused kernel), and at each hook the ops of that hook and
/// step run invoke by invoke, in plan order. Saves are evaluated at the end of each step they belong to.
/// </summary>
static class PlanRunner
{
    sealed class StopForward : Exception;

    public static TraceResult Run(TraceTarget target, TracePlan plan, PlanLimits limits, CancellationToken cancel = default)
    {
        var compiled = PlanValidator.Compile(plan, target.Layout, limits);
        return new Execution(target, compiled, limits, cancel).Run();
    }

    sealed class Execution(TraceTarget target, PlanValidator.Compiled compiled, PlanLimits limits, CancellationToken cancel)
    {
        readonly TracePlan _plan = compiled.Plan;
        readonly Dictionary<string, Tensor> _values = [];      // latest value of each read, by id
        readonly Dictionary<string, Tensor> _gradSources = []; // the activation each gradient read differentiates, by hook
        readonly Dictionary<string, Tensor> _constants = [];
        readonly List<Tensor> _owned = [];                     // values kept past their block's dispose scope
        readonly Dictionary<string, List<(int, Tensor)>> _saved = [];
        Dictionary<(int Step, string Hook), List<PlanValidator.OpSchedule>> _events = [];
        (long Start, long Length)[] _rows = [];
        int _step;
        bool _stopped;

        public TraceResult Run()
        {
            bool needsGrad = compiled.BackwardOp >= 0;
            var handles = new List<IDisposable>();
            try
            {
                using var scope = NewDisposeScope();
                using var gradMode = needsGrad ? enable_grad() : no_grad();
                var (tokens, mask) = Batch();
                foreach (var (name, c) in _plan.Constants ?? [])
                    _constants[name] = tensor(c.Data.ToArray(), dtype: ScalarType.Float32, device: target.Device).reshape([.. c.Shape]);
                _events = compiled.Ops.Where(o => o.Op.Hook is not null)
                    .SelectMany(o => (o.Op.Grad ? [0] : o.Steps).Select(s => (Key: (s, o.Op.Hook!), Op: o)))
                    .GroupBy(p => p.Key)
                    .ToDictionary(g => g.Key, g => g.Select(p => p.Op).OrderBy(o => o.Group).ThenBy(o => o.Index).ToList());
                foreach (var hook in _events.Keys.Select(k => k.Hook).Distinct().Where(h => h != TracePlan.OutputHook))
                    handles.Add(target.HookDict[hook].Add((activation, point) => AtHook(point.Name, activation), HookDirection.Forward));
                if (cancel.CanBeCanceled)
                    foreach (var point in target.HookDict.Values.Where(p => p.Name.EndsWith(".hook_resid_pre", StringComparison.Ordinal)))
                        handles.Add(point.Add((_, _) => { cancel.ThrowIfCancellationRequested(); return null; }, HookDirection.Forward));

                Tensor? generated = _plan.Generate is null ? RunForward(tokens, mask) : RunGeneration(tokens);
                if (compiled.BackwardOp >= 0) RunBackward();
                generated = generated?.detach().clone().DetachFromDisposeScope();
                return new TraceResult(_saved.ToDictionary(kv => kv.Key, kv => kv.Value), generated, _stopped);
            }
            catch
            {
                foreach (var list in _saved.Values) foreach (var (_, t) in list) t.Dispose();
                throw;
            }
            finally
            {
                foreach (var h in handles) h.Dispose();
                foreach (var t in _owned) t.Dispose();
                _values.Clear();
                _gradSources.Clear();
            }
        }

        /// <summary>The invokes as one batch [batch, pos]: equal lengths as they are, otherwise padded (left for decoders) with a mask.</summary>
        (Tensor Tokens, Tensor? Mask) Batch()
        {
            var parts = _plan.Invokes.Select(inv => inv.Text is { } text
                ? target.Tokenize(text)
                : tensor(inv.Tokens!.SelectMany(r => r).ToArray(), [inv.Tokens!.Count, inv.Tokens[0].Count])).ToList(); // [b_i, p_i]
            foreach (var p in parts)
                if (p.shape[1] > target.NCtx)
                    throw new PlanValidationException($"invokes: a text invoke is {p.shape[1]} tokens, more than n_ctx = {target.NCtx} of {target.Name}.");
            long start = 0;
            _rows = [.. parts.Select(p => { var r = (start, p.shape[0]); start += p.shape[0]; return r; })];
            long pos = parts.Max(p => p.shape[1]);
            if (parts.All(p => p.shape[1] == pos)) return (cat(parts, 0).to(target.Device), null);
            var padded = parts.Select(p => Pad(p, pos, 0)).ToList();
            var masks = parts.Select(p => Pad(ones_like(p), pos, 0)).ToList();
            return (cat(padded, 0).to(target.Device), cat(masks, 0).to(target.Device)); // [batch, pos]
        }

        Tensor Pad(Tensor t, long pos, long value)
        {
            long missing = pos - t.shape[1];
            if (missing == 0) return t;
            var fill = full(t.shape[0], missing, value, dtype: t.dtype);
            return target.PadsLeft ? cat([fill, t], 1) : cat([t, fill], 1);
        }

        Tensor? RunForward(Tensor tokens, Tensor? mask)
        {
            _step = 0;
            try
            {
                var output = target.Forward(tokens, mask);
                AtHook(TracePlan.OutputHook, output);
            }
            catch (StopForward) { _stopped = true; }
            SaveStep(0);
            return null;
        }

        Tensor RunGeneration(Tensor prompt)
        {
            var g = _plan.Generate!;
            using var cache = target.NewCache();
            using var generator = g.Temperature > 0 ? new Generator((ulong)g.Seed, target.Device) : null;
            var sequence = prompt; // [batch, pos]
            for (_step = 0; _step < g.MaxNewTokens; _step++)
            {
                cancel.ThrowIfCancellationRequested();
                try
                {
                    using var stepScope = NewDisposeScope();
                    var logits = AtHook(TracePlan.OutputHook, target.Step(sequence[.., (int)cache.Length..], cache)); // [batch, new_pos, d_vocab]
                    var last = logits[.., -1].to(ScalarType.Float32); // [batch, d_vocab]
                    var next = generator is null ? last.argmax(-1, keepdim: true) : HookedTransformer.Sample(last / g.Temperature, null, null, generator); // [batch, 1]
                    sequence = cat([sequence, next], 1).MoveToOuterDisposeScope(); // [batch, pos + 1]
                }
                catch (StopForward) { _stopped = true; }
                SaveStep(_step);
                if (_stopped) break;
            }
            return sequence;
        }

        /// <summary>The ops of this hook at this step, invoke by invoke; returns the activation the forward pass continues with.</summary>
        Tensor AtHook(string hook, Tensor activation)
        {
            cancel.ThrowIfCancellationRequested();
            bool stop = false;
            if (_events.TryGetValue((_step, hook), out var ops))
                foreach (var o in ops)
                {
                    var op = o.Op;
                    if (op.Grad) continue;
                    switch (op.Op)
                    {
                        case PlanOp.Read:
                            var value = Select(activation, op);
                            if (compiled.BackwardOp < 0) value = value.detach();
                            _owned.Add(value.DetachFromDisposeScope());
                            _values[op.Id!] = value;
                            break;
                        case PlanOp.Write:
                            activation = Write(activation, o, Evaluate(op.Value!, $"ops[{o.Index}].value", 1));
                            break;
                        case PlanOp.Stop:
                            stop = true;
                            break;
                    }
                }
            if (compiled.BackwardOp >= 0 && _step == 0 && ops is not null && ops.Any(o => o.Op.Grad))
            {
                if (!activation.requires_grad) activation = activation.detach().requires_grad_(true);
                _owned.Add(activation.alias().DetachFromDisposeScope());
                _gradSources[hook] = _owned[^1];
            }
            if (stop) throw new StopForward();
            return activation;
        }

        /// <summary>The rows of the op's invoke, then its index.</summary>
        Tensor Select(Tensor activation, PlanOp op)
        {
            var view = op.Invoke is int i ? activation.narrow(0, _rows[i].Start, _rows[i].Length) : activation;
            return op.Index is null ? view : view[PlanIndex.Parse(op.Index, "index").ToTensorIndices()];
        }

        Tensor Write(Tensor activation, PlanValidator.OpSchedule o, Tensor value)
        {
            var op = o.Op;
            var target_ = Select(activation, op);
            if (!Broadcasts(value.shape, target_.shape))
                throw new TraceShapeException(
                    $"ops[{o.Index}] writes a value of shape {ShapeText.Of(value.shape)} to '{op.Hook}'{(op.Invoke is int i ? $" (invoke {i})" : "")}{(op.Index is null ? "" : $" at {op.Index}")}, " +
                    $"where the activation is {ShapeText.Of(target_.shape)}: a write must keep the activation's shape (a value that broadcasts to it is fine, e.g. a scalar or a [d_model] vector).");
            value = value.to(activation.dtype).to(activation.device);
            if (op.Invoke is null && op.Index is null)
                return value.shape.SequenceEqual(activation.shape) ? value : value.expand(activation.shape).contiguous();
            var written = activation.clone();
            var view = op.Invoke is int r ? written.narrow(0, _rows[r].Start, _rows[r].Length) : written;
            if (op.Index is null) view.copy_(value.expand(view.shape));
            else view[PlanIndex.Parse(op.Index, "index").ToTensorIndices()] = value;
            return written;
        }

        static bool Broadcasts(long[] from, long[] to)
        {
            if (from.Length > to.Length) return false;
            for (int i = 1; i <= from.Length; i++)
                if (from[^i] != 1 && from[^i] != to[^i]) return false;
            return true;
        }

        Tensor Evaluate(PlanExpr e, string where, int depth)
        {
            if (e.Ref is { } id)
                return _values.TryGetValue(id, out var v) ? v
                    : throw new PlanValidationException($"{where}: '{id}' was never read — its hook was not reached in this run.");
            if (e.Scalar is double s) return tensor(s, dtype: ScalarType.Float32, device: target.Device);
            if (e.Const is { } c) return _constants[c];
            var args = e.Args!.Select((a, i) => Evaluate(a, $"{where}.args[{i}]", depth + 1)).ToList();
            return PlanOps.Apply(e, args, target, limits, where);
        }

        /// <summary>Evaluates the saves that belong to this step, taking copies out of the dispose scopes.</summary>
        void SaveStep(int step)
        {
            foreach (var o in compiled.Ops)
            {
                if (o.Op.Op != PlanOp.Save || !o.Steps.Contains(step) || (compiled.BackwardOp >= 0 && o.Index > compiled.BackwardOp)) continue;
                Keep(o, step);
            }
        }

        void Keep(PlanValidator.OpSchedule o, int step)
        {
            using var scope = NewDisposeScope();
            var value = Evaluate(o.Op.Value!, $"ops[{o.Index}].value", 1).detach().clone().DetachFromDisposeScope();
            if (!_saved.TryGetValue(o.Op.Name!, out var list)) _saved[o.Op.Name!] = list = [];
            list.Add((step, value));
        }

        /// <summary>Differentiates the backward op's scalar with respect to each activation a gradient read names.</summary>
        void RunBackward()
        {
            var op = compiled.Ops[compiled.BackwardOp];
            using var scope = NewDisposeScope();
            var loss = Evaluate(op.Op.Value!, $"ops[{op.Index}].value", 1);
            if (loss.NumberOfElements != 1)
                throw new TraceShapeException($"ops[{op.Index}]: backward needs a scalar; the value has shape {ShapeText.Of(loss.shape)}. Reduce it first (\"sum\" or \"mean\").");
            if (!loss.requires_grad)
                throw new PlanValidationException($"ops[{op.Index}]: the backward value does not depend on any activation; it has no gradient.");
            var hooks = _gradSources.Keys.ToList();
            var grads = UncaughtNativeCalls.Grad([loss.reshape([])], [.. hooks.Select(h => _gradSources[h])], allowUnused: true);
            var gradByHook = hooks.Select((h, i) => (h, g: grads[i] ?? zeros_like(_gradSources[h]))).ToDictionary(p => p.h, p => p.g);
            foreach (var o in compiled.Ops.Where(o => o.Op.Op == PlanOp.Read && o.Op.Grad))
            {
                if (!gradByHook.TryGetValue(o.Op.Hook!, out var grad))
                    throw new PlanValidationException($"ops[{o.Index}]: the forward pass never reached '{o.Op.Hook}', so it has no gradient.");
                var value = Select(grad, o.Op).detach();
                _owned.Add(value.DetachFromDisposeScope());
                _values[o.Op.Id!] = value;
            }
            foreach (var o in compiled.Ops.Where(o => o.Op.Op == PlanOp.Save && o.Index > compiled.BackwardOp)) Keep(o, 0);
        }
    }
}
