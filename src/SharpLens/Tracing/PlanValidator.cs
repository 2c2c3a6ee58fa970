using System.Globalization;
using SharpLens.Hooks;

namespace SharpLens.Tracing;

/// <summary>
/// Checks a plan against a model's layout and the limits before anything runs: known ops only, every hook real,
/// every reference to a value read earlier in forward order, shapes and sizes of inputs and constants bounded.
/// Errors name the op (<c>ops[3].value.args[0]</c>), the hook and what to change.
/// </summary>
public static class PlanValidator
{
    /// <summary>Where and when each op runs, as the runner needs it.</summary>
    internal sealed record Compiled(TracePlan Plan, int StepCount, IReadOnlyList<OpSchedule> Ops, int BackwardOp);

    /// <summary>One op's steps, hook rank (forward order) and invoke group (invokes in order, then the whole batch).</summary>
    internal sealed record OpSchedule(int Index, PlanOp Op, IReadOnlyList<int> Steps, int Rank, int Group);

    /// <summary>Validates <paramref name="plan"/> for a model with <paramref name="layout"/>; throws <see cref="PlanValidationException"/>.</summary>
    public static void Validate(TracePlan plan, TraceLayout layout, PlanLimits? limits = null) => Compile(plan, layout, limits ?? PlanLimits.Server);

    internal static Compiled Compile(TracePlan plan, TraceLayout layout, PlanLimits limits)
    {
        if (plan.Version != 1)
            throw new PlanValidationException($"sharplens_plan: version {plan.Version} is not supported; this SharpLens reads version 1.");
        if (plan.Ops is null || plan.Invokes is null) throw new PlanValidationException("A plan needs \"invokes\" and \"ops\" lists.");
        if (plan.Ops.Count > limits.MaxOps) throw new PlanValidationException($"ops: the plan has {plan.Ops.Count} ops; the limit is {limits.MaxOps}.");
        var rank = layout.Hooks.Select((h, i) => (h, i)).ToDictionary(p => p.h, p => p.i);
        int groups = CheckInvokes(plan, layout, limits);
        int steps = CheckGeneration(plan, layout, limits);
        CheckConstants(plan, limits);

        var reads = new Dictionary<string, OpSchedule>();
        var saves = new HashSet<string>();
        var schedule = new List<OpSchedule>();
        int nodes = 0, backward = -1;
        (int Step, int Rank)? stop = null;
        string? stopWhere = null;
        for (int i = 0; i < plan.Ops.Count; i++)
        {
            var op = plan.Ops[i];
            string where = $"ops[{i}]";
            if (op is null) throw new PlanValidationException($"{where} is null.");
            if (!PlanOp.Kinds.Contains(op.Op))
                throw new PlanValidationException($"{where}.op: unknown op '{op.Op}'. Plan ops are: {string.Join(", ", PlanOp.Kinds)}.");
            int group = op.Invoke ?? plan.Invokes.Count;
            if (op.Invoke is int inv && (inv < 0 || inv >= plan.Invokes.Count))
                throw new PlanValidationException($"{where}.invoke: invoke {inv} does not exist; the plan has {plan.Invokes.Count} (0 to {plan.Invokes.Count - 1}), or omit it for the whole batch.");
            if (op.Index is not null) PlanIndex.Parse(op.Index, $"{where}.index");
            bool hooked = op.Op is PlanOp.Read or PlanOp.Write or PlanOp.Stop;
            int r = int.MaxValue;
            if (hooked)
            {
                if (op.Hook is null) throw new PlanValidationException($"{where}: '{op.Op}' needs a \"hook\", e.g. \"blocks.0.hook_resid_post\".");
                if (!rank.TryGetValue(op.Hook, out r))
                    throw new PlanValidationException($"{where}.hook: {new HookNotFoundException(op.Hook, layout.Hooks).Message} ('{TracePlan.OutputHook}' is the model's output.)");
            }
            else if (op.Hook is not null) throw new PlanValidationException($"{where}: '{op.Op}' takes no \"hook\".");
            if (op.Op is PlanOp.Read && op.Grad && op.Steps is not null)
                throw new PlanValidationException($"{where}: gradients are read once, after the backward pass; drop \"steps\".");

            switch (op.Op)
            {
                case PlanOp.Read:
                    if (string.IsNullOrEmpty(op.Id)) throw new PlanValidationException($"{where}: a read needs an \"id\" for later ops to refer to.");
                    if (reads.ContainsKey(op.Id)) throw new PlanValidationException($"{where}.id: '{op.Id}' is already the id of an earlier read; ids must be unique.");
                    if (op.Value is not null) throw new PlanValidationException($"{where}: a read takes no \"value\".");
                    if (op.Grad && steps > 1) throw new PlanValidationException($"{where}: gradients are not available during generation.");
                    break;
                case PlanOp.Write:
                    if (op.Value is null) throw new PlanValidationException($"{where}: a write needs a \"value\" (an expression).");
                    if (op.Grad) throw new PlanValidationException($"{where}: gradients are read-only here.");
                    break;
                case PlanOp.Save:
                    if (string.IsNullOrEmpty(op.Name)) throw new PlanValidationException($"{where}: a save needs a \"name\".");
                    if (op.Name == "generated" || !saves.Add(op.Name))
                        throw new PlanValidationException($"{where}.name: '{op.Name}' is {(op.Name == "generated" ? "reserved for the generated tokens" : "already saved by an earlier op")}; names must be unique.");
                    if (op.Value is null) throw new PlanValidationException($"{where}: a save needs a \"value\", e.g. {{\"ref\": \"h\"}}.");
                    break;
                case PlanOp.Backward:
                    if (backward >= 0) throw new PlanValidationException($"{where}: the plan already has a backward op (ops[{backward}]); one per plan.");
                    if (steps > 1) throw new PlanValidationException($"{where}: backward is not available with generation.");
                    if (op.Value is null) throw new PlanValidationException($"{where}: backward needs a scalar \"value\" to differentiate.");
                    backward = i;
                    break;
            }

            var opSteps = op.Op is PlanOp.Save && op.Steps is null ? SaveSteps(op.Value!, reads) : ParseSteps(op.Steps, steps, $"{where}.steps");
            var scheduled = new OpSchedule(i, op, opSteps, op.Op is PlanOp.Save or PlanOp.Backward ? int.MaxValue : r, group);
            if (op.Value is not null)
                nodes += CheckExpression(op.Value, plan, reads, scheduled, i > backward && backward >= 0 && op.Op == PlanOp.Save, limits, layout, $"{where}.value", 1);
            if (nodes > limits.MaxExpressionNodes)
                throw new PlanValidationException($"{where}: the plan's expressions have more than {limits.MaxExpressionNodes} nodes; that is the limit.");

            // Within one invoke the forward pass decides the order: an op cannot reach back to a hook that already ran.
            if (hooked && !(op.Op == PlanOp.Read && op.Grad))
                foreach (var earlier in schedule)
                    if (earlier.Group == group && earlier.Rank != int.MaxValue && !(earlier.Op.Op == PlanOp.Read && earlier.Op.Grad) && earlier.Rank > r
                        && earlier.Steps.Intersect(opSteps).Any())
                        throw new TraceOrderException(
                            $"{where} ({op.Op} '{op.Hook}'{InvokeText(op)}) comes after ops[{earlier.Index}] ({earlier.Op.Op} '{earlier.Op.Hook}'), " +
                            $"but the forward pass reaches '{op.Hook}' before '{earlier.Op.Hook}', so it would already have run. " +
                            "Within one invoke, access hooks in the order the model runs them, or use a separate invoke.");
            if (stop is { } s && (hooked || op.Op == PlanOp.Save) && opSteps.Any(st => st > s.Step || (st == s.Step && r > s.Rank && op.Op != PlanOp.Save)))
                throw new TraceOrderException($"{where} ({op.Op}{(op.Hook is null ? "" : $" '{op.Hook}'")}) comes after {stopWhere}, which ends the forward pass first; move the stop later or drop this op.");
            if (op.Op == PlanOp.Stop)
            {
                if (opSteps.Count != 1) throw new PlanValidationException($"{where}.steps: a stop happens at one step.");
                if (stop is not null) throw new PlanValidationException($"{where}: the plan already stops ({stopWhere}); one stop per plan.");
                stop = (opSteps[0], r);
                stopWhere = $"ops[{i}] (stop at '{op.Hook}')";
            }
            if (op.Op == PlanOp.Read) reads[op.Id!] = scheduled;
            schedule.Add(scheduled);
        }
        if (stop is { } end)
            foreach (var o in schedule.Where(o => o.Op.Op != PlanOp.Stop && o.Steps.Any(st => st > end.Step)))
                throw new TraceOrderException($"ops[{o.Index}] ({o.Op.Op}{(o.Op.Hook is null ? "" : $" '{o.Op.Hook}'")}) runs at step {o.Steps.Max()}, after {stopWhere} at step {end.Step} ends the generation; stop later or drop it.");
        if (backward >= 0 && stop is not null) throw new PlanValidationException($"{stopWhere} and ops[{backward}] (backward): a stopped forward has no complete graph to differentiate; drop one.");
        foreach (var g in schedule.Where(o => o.Op.Op == PlanOp.Read && o.Op.Grad))
            if (backward < 0) throw new PlanValidationException($"ops[{g.Index}]: it reads a gradient, so the plan needs a \"backward\" op.");
        _ = groups;
        return new Compiled(plan, steps, schedule, backward);
    }

    static string InvokeText(PlanOp op) => op.Invoke is int i ? $" in invoke {i}" : " on the whole batch";

    /// <summary>A save without steps runs at every step one of the values it refers to was read.</summary>
    static IReadOnlyList<int> SaveSteps(PlanExpr value, Dictionary<string, OpSchedule> reads)
    {
        var steps = new SortedSet<int>();
        void Visit(PlanExpr e, int depth)
        {
            if (depth > 64) return;
            if (e.Ref is not null && reads.TryGetValue(e.Ref, out var r)) steps.UnionWith(r.Steps);
            foreach (var a in e.Args ?? []) if (a is not null) Visit(a, depth + 1);
        }
        Visit(value, 0);
        return steps.Count == 0 ? [0] : [.. steps];
    }

    /// <summary>"all", "2", "1:3" (stop exclusive), "0,2,4"; null is step 0.</summary>
    internal static IReadOnlyList<int> ParseSteps(string? text, int count, string where)
    {
        if (text is null) return [0];
        var t = text.Trim();
        IEnumerable<int> steps;
        if (t == "all") steps = Enumerable.Range(0, count);
        else if (t.Contains(':'))
        {
            var p = t.Split(':');
            if (p.Length != 2) throw BadSteps(text, where);
            int a = p[0].Length == 0 ? 0 : Int(p[0], text, where), b = p[1].Length == 0 ? count : Int(p[1], text, where);
            steps = Enumerable.Range(a, Math.Max(0, Math.Min(b, count) - a));
        }
        else steps = t.Split(',').Select(s => Int(s.Trim(), text, where));
        var list = steps.Distinct().Order().ToList();
        if (list.Count == 0) throw new PlanValidationException($"{where}: \"{text}\" selects no step; the plan has {count} (0 to {count - 1}).");
        if (list[0] < 0 || list[^1] >= count)
            throw new PlanValidationException($"{where}: step {(list[0] < 0 ? list[0] : list[^1])} does not exist; the plan has {count} step{(count == 1 ? "" : "s")} (0 to {count - 1}){(count == 1 ? "; add \"generate\" for more" : "")}.");
        return list;
    }

    static int Int(string s, string text, string where) =>
        int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : throw BadSteps(text, where);

    static PlanValidationException BadSteps(string text, string where) =>
        new($"{where}: \"{text}\" is not a step selection; write \"all\", a step (\"2\"), a range (\"1:3\") or a list (\"0,2\").");

    static int CheckInvokes(TracePlan plan, TraceLayout layout, PlanLimits limits)
    {
        if (plan.Invokes.Count == 0) throw new PlanValidationException("invokes: the plan has no input; add at least one invoke with \"tokens\" or \"text\".");
        if (plan.Invokes.Count > limits.MaxInvokes) throw new PlanValidationException($"invokes: {plan.Invokes.Count} invokes; the limit is {limits.MaxInvokes}.");
        long batch = 0, maxPos = 0;
        for (int i = 0; i < plan.Invokes.Count; i++)
        {
            var inv = plan.Invokes[i];
            string where = $"invokes[{i}]";
            if (inv is null || (inv.Tokens is null) == (inv.Text is null))
                throw new PlanValidationException($"{where}: give exactly one of \"tokens\" ([[ids]]) or \"text\".");
            if (inv.Text is { } text)
            {
                if (text.Length > limits.MaxTextLength) throw new PlanValidationException($"{where}.text: {text.Length} characters; the limit is {limits.MaxTextLength}.");
                batch += 1;
                maxPos = Math.Max(maxPos, Math.Min(text.Length + 2, layout.NCtx));
                continue;
            }
            var rows = inv.Tokens!;
            if (rows.Count == 0 || rows.Any(r => r is null || r.Count == 0)) throw new PlanValidationException($"{where}.tokens: give [batch, pos] ids with at least one token per row.");
            int pos = rows[0].Count;
            if (rows.Any(r => r.Count != pos)) throw new PlanValidationException($"{where}.tokens: rows have different lengths; one invoke is a rectangular [batch, pos] (use another invoke for another length).");
            if (pos > layout.NCtx) throw new PlanValidationException($"{where}.tokens: {pos} tokens but {layout.Name} accepts at most n_ctx = {layout.NCtx}.");
            for (int b = 0; b < rows.Count; b++)
                for (int p = 0; p < pos; p++)
                    if (rows[b][p] < 0 || rows[b][p] >= layout.DVocab)
                        throw new PlanValidationException($"{where}.tokens[{b}][{p}]: id {rows[b][p]} is outside the vocabulary [0, {layout.DVocab - 1}] of {layout.Name}.");
            batch += rows.Count;
            maxPos = Math.Max(maxPos, pos);
            if (batch * maxPos > limits.MaxTokens) break;
        }
        if (batch * maxPos > limits.MaxTokens)
            throw new PlanValidationException($"invokes: the batch would hold {batch} × {maxPos} tokens; the limit is {limits.MaxTokens}.");
        return plan.Invokes.Count + 1;
    }

    static int CheckGeneration(TracePlan plan, TraceLayout layout, PlanLimits limits)
    {
        if (plan.Generate is not { } g) return 1;
        if (layout.IsEncoder) throw new PlanValidationException($"generate: {layout.Name} is an encoder; it cannot generate. Drop \"generate\".");
        if (g.MaxNewTokens < 1 || g.MaxNewTokens > limits.MaxNewTokens)
            throw new PlanValidationException($"generate.max_new_tokens: {g.MaxNewTokens}; give 1 to {limits.MaxNewTokens}.");
        if (!(g.Temperature >= 0) || double.IsInfinity(g.Temperature)) throw new PlanValidationException($"generate.temperature: {g.Temperature}; give a finite temperature ≥ 0 (0 = greedy).");
        var lengths = plan.Invokes.Where(i => i?.Tokens is not null).Select(i => i.Tokens![0].Count).Distinct().ToList();
        if (lengths.Count > 1 || (lengths.Count == 1 && plan.Invokes.Any(i => i?.Text is not null)))
            throw new PlanValidationException("invokes: a generation's invokes must all have the same number of tokens (generation runs unpadded).");
        if (lengths.Count == 1 && lengths[0] + g.MaxNewTokens > layout.NCtx)
            throw new PlanValidationException($"generate.max_new_tokens: {lengths[0]} prompt tokens + {g.MaxNewTokens} new ones exceed n_ctx = {layout.NCtx} of {layout.Name}.");
        return g.MaxNewTokens;
    }

    static void CheckConstants(TracePlan plan, PlanLimits limits)
    {
        long total = 0;
        foreach (var (name, c) in plan.Constants ?? [])
        {
            string where = $"constants.{name}";
            if (c?.Shape is null || c.Data is null) throw new PlanValidationException($"{where}: a constant needs \"shape\" and \"data\".");
            if (c.Shape.Count > 8 || c.Shape.Any(d => d < 0)) throw new PlanValidationException($"{where}.shape: {ShapeText.Of(c.Shape)} is not a shape (at most 8 non-negative dimensions).");
            long n = 1;
            foreach (var d in c.Shape) n = d == 0 ? 0 : n > limits.MaxConstantElements / d ? long.MaxValue : n * d;
            if (n > limits.MaxConstantElements) throw new PlanValidationException($"{where}.shape: {ShapeText.Of(c.Shape)} is more than {limits.MaxConstantElements:N0} elements, the limit for constants.");
            if (n != c.Data.Count) throw new PlanValidationException($"{where}: shape {ShapeText.Of(c.Shape)} holds {n} elements but \"data\" has {c.Data.Count}.");
            total += n;
            if (total > limits.MaxConstantElements) throw new PlanValidationException($"constants: more than {limits.MaxConstantElements:N0} elements in all; that is the limit.");
        }
    }

    static int CheckExpression(PlanExpr e, TracePlan plan, Dictionary<string, OpSchedule> reads, OpSchedule user, bool gradsAllowed,
        PlanLimits limits, TraceLayout layout, string where, int depth)
    {
        if (depth > limits.MaxExpressionDepth) throw new PlanValidationException($"{where}: the expression is nested deeper than {limits.MaxExpressionDepth} levels, the limit.");
        if (e is null) throw new PlanValidationException($"{where} is null.");
        int kinds = (e.Ref is null ? 0 : 1) + (e.Scalar is null ? 0 : 1) + (e.Const is null ? 0 : 1) + (e.Op is null ? 0 : 1);
        if (kinds != 1) throw new PlanValidationException($"{where}: an expression is exactly one of \"ref\", \"scalar\", \"const\" or \"op\"; this one has {kinds}.");
        if (e.Op is null && (e.Args is not null || e.Dims is not null || e.Index is not null))
            throw new PlanValidationException($"{where}: only an \"op\" takes \"args\", \"dims\" or \"index\".");
        if (e.Scalar is double v && !double.IsFinite(v)) throw new PlanValidationException($"{where}.scalar: {v} is not a finite number.");
        if (e.Const is { } c && (plan.Constants is null || !plan.Constants.ContainsKey(c)))
            throw new PlanValidationException($"{where}.const: no constant named '{c}' in \"constants\".");
        if (e.Ref is { } id) CheckRef(id, reads, user, gradsAllowed, where);
        if (e.Op is null) return 1;
        if (!PlanOps.All.ContainsKey(e.Op)) throw new PlanValidationException($"{where}.op: unknown operation '{e.Op}'. Expressions may use: {PlanOps.Known}.");
        if (e.Op is "ln_final" && layout.IsEncoder) throw new PlanValidationException($"{where}: {layout.Name} is an encoder; it has no final norm for 'ln_final'.");
        PlanOps.CheckShape(e, where);
        int nodes = 1;
        for (int i = 0; i < e.Args!.Count; i++)
            nodes += CheckExpression(e.Args[i], plan, reads, user, gradsAllowed, limits, layout, $"{where}.args[{i}]", depth + 1);
        return nodes;
    }

    static void CheckRef(string id, Dictionary<string, OpSchedule> reads, OpSchedule user, bool gradsAllowed, string where)
    {
        if (!reads.TryGetValue(id, out var read))
            throw new PlanValidationException($"{where}.ref: no earlier read has id '{id}'; a value is read (op \"read\") before it is used.");
        if (read.Op.Grad)
        {
            if (!gradsAllowed) throw new TraceOrderException($"{where}.ref: '{id}' is the gradient at '{read.Op.Hook}', which exists only after the backward op; only saves after it can use it.");
            return;
        }
        // The value must exist when this op runs: read at an earlier step, an earlier hook, or the same hook earlier.
        foreach (int step in user.Steps)
        {
            bool available = read.Steps.Any(s => s < step || (s == step &&
                (read.Rank < user.Rank || (read.Rank == user.Rank && (read.Group < user.Group || (read.Group == user.Group && read.Index < user.Index))))));
            if (available) continue;
            string user_ = $"ops[{user.Index}] ({user.Op.Op}{(user.Op.Hook is null ? "" : $" at '{user.Op.Hook}'")}{(user.Op.Invoke is int ui ? $", invoke {ui}" : "")}, step {step})";
            string source = $"ops[{read.Index}] reads at '{read.Op.Hook}'{(read.Op.Invoke is int ri ? $" (invoke {ri})" : "")}";
            string why = read.Steps.All(s => s > step) ? $"only at step {read.Steps[0]}, after step {step}"
                : user.Op.Hook == read.Op.Hook ? $"only after it: at one hook the invokes run in order (0, 1, …, then the whole batch), so read it in an earlier invoke"
                : $"— a hook the forward pass reaches only after '{user.Op.Hook}'";
            throw new TraceOrderException($"{where}.ref: {user_} uses '{id}', which {source} {why}. " +
                "A value can only be used once the forward pass has produced it: read it at an earlier hook, or write at a later one.");
        }
    }
}
