using SharpLens.Hooks;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>circuit-tracer's <c>attribute</c> settings; the defaults are its defaults.</summary>
public sealed record AttributionOptions
{
    /// <summary>At most this many salient logits (used when <see cref="Targets"/> is null).</summary>
    public int MaxNLogits { get; init; } = 10;
    /// <summary>Salient logits are added until their cumulative probability reaches this.</summary>
    public double DesiredLogitProb { get; init; } = 0.95;
    /// <summary>Rows (source nodes) per backward pass; the forward pass runs this many copies of the prompt.</summary>
    public int BatchSize { get; init; } = 512;
    /// <summary>At most this many feature nodes, visited in order of estimated influence; null: every active feature.</summary>
    public int? MaxFeatureNodes { get; init; }
    /// <summary>Batches between re-estimates of feature influence when <see cref="MaxFeatureNodes"/> caps the graph.</summary>
    public int UpdateInterval { get; init; } = 4;
    /// <summary>Logit nodes to attribute; null: the salient logits.</summary>
    public IReadOnlyList<AttributionTarget>? Targets { get; init; }
    /// <summary>Reports (rows done, rows to do) after every backward pass.</summary>
    public IProgress<(int Done, int Total)>? Progress { get; init; }
}

/// <summary>
/// Builds attribution graphs as circuit-tracer does. One forward pass of <c>batch_size</c> copies of the prompt through the
/// replacement model keeps its autograd graph; then each backward pass computes <c>batch_size</c> rows of the adjacency
/// matrix: for a target node t (a logit's demeaned unembedding vector, or a feature's encoder row injected at its
/// layer's input and position) the gradient reaching every MLP output and the embeddings is contracted with each
/// source's output vector (a_s W_dec,s for features, the error vector, the token embedding), giving the direct effects
/// A[t, s] of every source s on t. Rows are targets, columns sources, in circuit-tracer's node order
/// <c>[features (layer, pos, feature) | errors layer-major | tokens | logits]</c>.
/// </summary>
public static class Attributor
{
    /// <summary>The graph of one prompt [pos] (or [1, pos]); a BOS-like token is put first when the prompt lacks one.</summary>
    public static AttributionGraph Attribute(ReplacementModel rm, Tensor tokens, AttributionOptions? options = null)
    {
        var o = options ?? new AttributionOptions();
        CheckOptions(o);
        using var scope = torch.NewDisposeScope();
        var ids = rm.EnsureTokenized(tokens); // [pos]
        if (ids.shape[0] > rm.Model.Config.NCtx)
            throw new AttributionArgumentException("tokens", $"the prompt has {ids.shape[0]} tokens (BOS included) but {rm.Model.Config.ModelName} accepts at most n_ctx = {rm.Model.Config.NCtx}.");
        using var state = rm.Run(ids);
        int nLayers = rm.NLayers;
        long nPos = ids.shape[0];
        var tc = rm.Transcoders;

        // Active features, sorted by (layer, pos, feature) as a coalesced sparse tensor is.
        var active = state.Activations.nonzero();       // [n_active, 3]
        int nActive = (int)active.shape[0];
        var aLayer = active[.., 0].contiguous(); var aPos = active[.., 1].contiguous(); var aFeat = active[.., 2].contiguous();
        var flat = (aLayer * nPos + aPos) * tc.DTranscoder + aFeat;
        var values = state.Activations.flatten().index_select(0, flat); // [n_active]
        var encoderVecs = tc.W_enc.view(-1, tc.DModel).index_select(0, aLayer * tc.DTranscoder + aFeat); // [n_active, d_model]
        var writes = DecoderWrites(tc, nLayers, active, values);

        var targets = o.Targets is null
            ? ResolvedTargets.Salient(rm, state.Logits[-1], o.MaxNLogits, o.DesiredLogitProb)
            : ResolvedTargets.From(rm, state.Logits[-1], o.Targets);
        int nLogits = targets.Count;
        int logitOffset = nActive + (nLayers + 1) * (int)nPos;
        int totalNodes = logitOffset + nLogits;
        int maxFeatures = Math.Min(o.MaxFeatureNodes ?? nActive, nActive);
        int batch = Math.Max(1, Math.Min(o.BatchSize, Math.Max(nLogits, maxFeatures)));

        var edges = torch.zeros(maxFeatures + nLogits, totalNodes, dtype: tc.DType); // rows in attribution order
        var rowToNode = new long[maxFeatures + nLogits];
        using var pass = new BackwardPass(rm, ids, batch, state.Errors, writes, nActive);
        int done = 0, todo = nLogits + maxFeatures;

        // Logit rows: the demeaned unembedding vectors injected after the final norm at the last position.
        for (int i = 0; i < nLogits; i += batch)
        {
            int n = Math.Min(batch, nLogits - i);
            using var rows = pass.Rows(Enumerable.Repeat(nLayers, n).ToArray(), Enumerable.Repeat(nPos - 1, n).ToArray(), targets.Vectors[i..(i + n)]);
            edges[i..(i + n), ..logitOffset] = rows;
            for (int r = 0; r < n; r++) rowToNode[i + r] = logitOffset + i + r;
            o.Progress?.Report((done += n, todo));
        }

        // Feature rows: each feature's encoder row injected at its layer's input and position.
        var layerOf = aLayer.data<long>().ToArray();
        var posOf = aPos.data<long>().ToArray();
        var visited = new bool[nActive];
        int st = nLogits, nVisited = 0;
        while (nVisited < maxFeatures)
        {
            long[] pending;
            if (maxFeatures == nActive) pending = [.. Enumerable.Range(0, nActive).Select(i => (long)i)];
            else
            {
                using var influence = PartialInfluences(edges[..st], targets.Probabilities, rowToNode[..st]);
                var rank = influence[..nActive].sort(descending: true, stable: true).Indices.data<long>().ToArray();
                int queue = Math.Min(o.UpdateInterval * batch, maxFeatures - nVisited);
                pending = [.. rank.Where(i => !visited[i]).Take(queue)];
            }
            for (int start = 0; start < pending.Length; start += batch)
            {
                var chunk = pending[start..Math.Min(start + batch, pending.Length)];
                nVisited += chunk.Length;
                using var idx = torch.tensor(chunk);
                using var inject = encoderVecs.index_select(0, idx);
                using var rows = pass.Rows([.. chunk.Select(i => (int)layerOf[i])], [.. chunk.Select(i => posOf[i])], inject);
                edges[st..(st + chunk.Length), ..logitOffset] = rows;
                for (int r = 0; r < chunk.Length; r++) { rowToNode[st + r] = chunk[r]; visited[chunk[r]] = true; }
                st += chunk.Length;
                o.Progress?.Report((done += chunk.Length, todo));
            }
        }

        // Packaging: columns of the selected features and every non-feature node; rows in node order; a square matrix.
        var selected = torch.tensor(Enumerable.Range(0, nActive).Where(i => visited[i]).Select(i => (long)i).ToArray()).to(ScalarType.Int64);
        if (maxFeatures < nActive)
            edges = edges.index_select(1, torch.cat([selected, torch.arange(nActive, totalNodes, dtype: ScalarType.Int64)]));
        edges = edges.index_select(0, torch.tensor(rowToNode).sort(stable: true).Indices);
        long finalCount = edges.shape[1];
        var adjacency = torch.zeros(finalCount, finalCount, dtype: ScalarType.Float32);
        adjacency[..maxFeatures] = edges[..maxFeatures];
        adjacency[(int)(finalCount - nLogits)..] = edges[maxFeatures..];

        var graph = new AttributionGraph(
            rm.DecodeAll(ids), ids, active, values.to(ScalarType.Float32), selected, adjacency,
            targets.VocabIds, targets.Labels, targets.Probabilities.to(ScalarType.Float32), nLayers, rm.Transcoders.Scan,
            [.. ids.data<long>().ToArray().Select(rm.Decode)], rm.Model.Config.DVocab);
        graph.MoveOut();
        return graph;
    }

    /// <summary>Refuses unusable settings, naming the option.</summary>
    public static void CheckOptions(AttributionOptions o)
    {
        if (o.BatchSize <= 0) throw new AttributionArgumentException("--batch-size", $"must be positive, got {o.BatchSize}.");
        if (o.MaxNLogits <= 0) throw new AttributionArgumentException("--max-n-logits", $"must be positive, got {o.MaxNLogits}.");
        if (!(o.DesiredLogitProb > 0 && o.DesiredLogitProb <= 1)) throw new AttributionArgumentException("--desired-logit-prob", $"must be in (0, 1], got {o.DesiredLogitProb}.");
        if (o.MaxFeatureNodes is <= 0) throw new AttributionArgumentException("--max-feature-nodes", $"must be positive, got {o.MaxFeatureNodes}.");
        if (o.UpdateInterval <= 0) throw new AttributionArgumentException("--update-interval", $"must be positive, got {o.UpdateInterval}.");

    }

    /// <summary>For each MLP output layer: which active features write there (column, position) and a_s · W_dec vectors.</summary>
    static (Tensor Cols, Tensor Pos, Tensor Vecs)[] DecoderWrites(TranscoderSet tc, int nLayers, Tensor active, Tensor values)
    {
        var perLayer = Enumerable.Range(0, nLayers).Select(_ => new List<(Tensor, Tensor, Tensor)>()).ToArray();
        var layers = active[.., 0];
        for (int l = 0; l < nLayers; l++)
        {
            var cols = (layers == l).nonzero().flatten(); // indices into active
            if (cols.shape[0] == 0) continue;
            var feats = active[.., 2].index_select(0, cols);
            var pos = active[.., 1].index_select(0, cols);
            var decs = tc.W_dec[l].index_select(0, feats) * values.index_select(0, cols).view(-1, 1, 1); // [m, n_out, d_model]
            var (first, count) = tc.Outputs(l);
            for (int j = 0; j < count; j++) perLayer[first + j].Add((cols, pos, decs[.., j]));
        }
        return [.. perLayer.Select(list => list.Count == 0
            ? (torch.empty(0, dtype: ScalarType.Int64), torch.empty(0, dtype: ScalarType.Int64), torch.empty(0, tc.DModel, dtype: tc.DType))
            : (torch.cat(list.Select(x => x.Item1).ToList()), torch.cat(list.Select(x => x.Item2).ToList()), torch.cat(list.Select(x => x.Item3).ToList())))];
    }

    /// <summary>
    /// circuit-tracer's compute_partial_influences: power iteration of the logit weights through the rows computed so far
    /// (normalised |A|, rows summing to 1), at most 128 steps.
    /// </summary>
    static Tensor PartialInfluences(Tensor edges, Tensor logitProbs, long[] rowToNode)
    {
        using var scope = torch.NewDisposeScope();
        var normalized = edges.abs().to(ScalarType.Float32);
        normalized = normalized / normalized.sum(1, keepdim: true).clamp_min(1e-8);
        long n = edges.shape[1];
        var influences = torch.zeros(n);
        var prod = torch.zeros(n);
        prod[(int)(n - logitProbs.shape[0])..] = logitProbs;
        var rowIdx = torch.tensor(rowToNode);
        for (int it = 0; ; it++)
        {
            if (it == 128) throw new SharpLensInternalException("Influence estimation did not converge in 128 steps; the graph has a cycle, which attribution graphs cannot have.");
            prod = prod.index_select(0, rowIdx).MatMul(normalized);
            if (!prod.any().item<bool>()) break;
            influences += prod;
        }
        return influences.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The batched forward pass with its hooks, kept for many backward passes. Hooks (all removed on dispose):
    /// attention patterns and norm scales detached; the embedding made the gradient's sink; each layer's transcoder input
    /// kept (a root for feature rows); each MLP output replaced by skip + (y − skip).detach(), with a backward hook that
    /// contracts its gradient with the decoder and error vectors; the embedding's backward hook contracts with W_E[tokens].
    /// </summary>
    sealed class BackwardPass : IDisposable
    {
        readonly ReplacementModel _rm;
        readonly int _batch, _nActive, _nLayers;
        readonly long _nPos;
        readonly Tensor[] _roots;     // [n_layers + 1] × [batch, pos, d_model]: transcoder inputs, then the final norm's output
        readonly Tensor _embed;       // [batch, pos, d_model] leaf
        readonly Tensor _last;        // [batch, pos, d_model] the last block's output, the final norm's input
        readonly IDisposable _hooks;
        Tensor? _buffer;              // [batch, row_size]

        public BackwardPass(ReplacementModel rm, Tensor ids, int batch, Tensor errors, (Tensor Cols, Tensor Pos, Tensor Vecs)[] writes, int nActive)
        {
            // Its tensors belong to the caller's dispose scope, which outlives every backward pass.
            (_rm, _batch, _nActive, _nLayers, _nPos) = (rm, batch, nActive, rm.NLayers, ids.shape[0]);
            var model = rm.Model;
            var tc = rm.Transcoders;
            var tokenVecs = model.embed.W_E.detach().index_select(0, ids.to(model.embed.W_E.device)).to(tc.DType); // [pos, d_model]
            _roots = new Tensor[_nLayers + 1];
            Tensor? embed = null, last = null;
            int L = _nLayers;
            long nPos = _nPos;
            int errorStart = nActive;

            HookFunction detach = (a, _) => a.detach();
            HookFunction startGraph = (a, _) => { embed = a.detach().requires_grad_(true).DetachFromDisposeScope(); return embed; };
            HookFunction embedGrad = (g, _) =>
            {
                using var s = torch.NewDisposeScope();
                _buffer![.., (errorStart + L * (int)nPos)..(errorStart + (L + 1) * (int)nPos)].add_((g.to(tc.DType) * tokenVecs).sum(-1)); // [batch, pos]
                return null;
            };
            var forward = new List<(string, HookFunction)> { ("hook_embed", startGraph) };
            var backward = new List<(string, HookFunction)> { ("hook_embed", embedGrad) };
            foreach (var name in model.HookDict.Keys)
                if (name.EndsWith(".hook_pattern", StringComparison.Ordinal) || name.EndsWith(".hook_scale", StringComparison.Ordinal)) forward.Add((name, detach));
            for (int layer = 0; layer < L; layer++)
            {
                int l = layer;
                forward.Add((rm.InputHook(l), (a, _) => { _roots[l] = a.alias().DetachFromDisposeScope(); return null; }));
                forward.Add((rm.OutputHook(l), (y, _) =>
                {
                    var skip = tc.SkipOf(l, _roots[l].to(tc.DType)).to(y.dtype);
                    return skip + (y - skip).detach();
                }));
                var (cols, pos, vecs) = writes[l];
                var err = errors[l]; // [pos, d_model]
                HookFunction contract = (g, _) =>
                {
                    using var s = torch.NewDisposeScope();
                    var grad = g.to(tc.DType); // [batch, pos, d_model]
                    // Features writing here, in chunks so the gathered gradients [batch, chunk, d_model] stay near 64 MB.
                    long m = cols.shape[0], chunk = Math.Max(1, (16L << 20) / Math.Max(1, grad.shape[0] * grad.shape[2]));
                    for (long c0 = 0; c0 < m; c0 += chunk)
                    {
                        long c1 = Math.Min(m, c0 + chunk);
                        _buffer!.index_add_(1, cols.narrow(0, c0, c1 - c0), (grad.index_select(1, pos.narrow(0, c0, c1 - c0)) * vecs.narrow(0, c0, c1 - c0)).sum(-1), 1); // [batch, chunk]
                    }
                    _buffer![.., (errorStart + l * (int)nPos)..(errorStart + (l + 1) * (int)nPos)].add_((grad * err).sum(-1)); // [batch, pos]
                    return null;
                };
                backward.Add((rm.OutputHook(l), contract));
            }
            HookFunction stop = (a, _) => { last = a.alias().DetachFromDisposeScope(); throw new StopForward(); };
            forward.Add(($"blocks.{L - 1}.hook_resid_post", stop));

            _hooks = model.Hooks(forward, backward);
            try
            {
                using (torch.enable_grad())
                {
                    try { model.Run(ids.unsqueeze(0).expand(batch, -1).contiguous()); }
                    catch (StopForward) { }
                    _roots[L] = model.ln_final.Forward(last!); // [batch, pos, d_model]: what the unembedding reads
                }
                (_embed, _last) = (embed!, last!);
            }
            catch
            {
                _hooks.Dispose();
                foreach (var t in _roots[..L].Append(embed).Append(last)) t?.Dispose();
                throw;
            }
        }

        /// <summary>Rows [n, row_size] for n target nodes: inject values[i] at (row i, positions[i]) of layer layers[i]'s root.</summary>
        public Tensor Rows(int[] layers, long[] positions, Tensor values)
        {
            using var scope = torch.NewDisposeScope();
            int n = layers.Length;
            _buffer = torch.zeros(_batch, _nActive + (_nLayers + 1) * _nPos, dtype: _rm.Transcoders.DType);
            var outputs = new List<Tensor>();
            var grads = new List<Tensor>();
            foreach (int layer in layers.Distinct().Order())
            {
                var rows = Enumerable.Range(0, n).Where(i => layers[i] == layer).ToArray();
                var root = _roots[layer];
                var grad = torch.zeros_like(root);
                var rowIdx = torch.tensor(rows.Select(i => (long)i).ToArray());
                grad.index_put_(values.index_select(0, rowIdx).to(root.dtype), [rowIdx, torch.tensor(rows.Select(i => positions[i]).ToArray())]);
                outputs.Add(root);
                grads.Add(grad);
            }
            using (torch.enable_grad())
                foreach (var g in UncaughtNativeCalls.Grad(outputs, [_embed], grads, retainGraph: true)) g?.Dispose();
            var result = _buffer[..n].clone();
            _buffer = null;
            return result.MoveToOuterDisposeScope();
        }

        /// <summary>Removes the hooks and frees what the hooks kept out of the forward's dispose scopes (the embedding
        /// leaf, each layer's root, the last block's output): with them goes the autograd graph of the batched forward.</summary>
        public void Dispose()
        {
            _hooks.Dispose();
            foreach (var t in _roots[.._nLayers]) t.Dispose();
            _embed.Dispose();
            _last.Dispose();
        }
    }

    sealed class StopForward : Exception;
}
