using SharpLens.Saes.Data;
using SharpLens.Techniques.MaxActivating;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Dashboards;

/// <summary>An SAE's (or transcoder's) encoder: activations [n, d_in] → feature activations [n, d_sae].</summary>
public delegate Tensor FeatureEncoder(Tensor activations);

/// <summary>
/// Feature dashboards, as SAELens / sae_vis show them: for each chosen feature, its top-activating contexts with
/// every token shaded by its activation, samples from equal-width activation intervals, its density and activation
/// histogram, and the tokens whose logits its decoder direction raises and lowers most. <see cref="ToHtml"/> writes
/// them as one self-contained page.
/// </summary>
public sealed class FeatureDashboard
{
    FeatureDashboard(string title, long tokens, IReadOnlyList<FeatureData> features, string? logitNote) =>
        (Title, TokensRead, Features, LogitNote) = (title, tokens, features, logitNote);

    public string Title { get; }
    /// <summary>Token positions read, not counting those left out (<see cref="FeatureDashboardOptions.SkipFirstPosition"/>, <see cref="FeatureDashboardOptions.ExcludedTokenIds"/>).</summary>
    public long TokensRead { get; }
    public IReadOnlyList<FeatureData> Features { get; }
    /// <summary>Why logit effects are missing, when they are.</summary>
    public string? LogitNote { get; }

    /// <summary>
    /// Reads <paramref name="tokens"/> [contexts, pos] through <paramref name="reader"/> (its first activation) and
    /// <paramref name="encoder"/>. Logit effects need both <paramref name="W_dec"/> [d_sae, d_in] and
    /// <paramref name="W_U"/> [d_in, d_vocab] (the decoder must write where the unembedding reads: the residual stream).
    /// Memory: the chosen features' activations on every token, contexts × pos × features floats; choosing features by
    /// density costs one extra pass that keeps only a count per feature.
    /// </summary>
    public static FeatureDashboard Build(ActivationReader reader, FeatureEncoder encoder, Tensor tokens,
        Func<IReadOnlyList<int>, IReadOnlyList<string>> toStrTokens, FeatureDashboardOptions? options = null,
        Tensor? W_dec = null, Tensor? W_U = null, string title = "Feature dashboards")
    {
        options ??= new FeatureDashboardOptions();
        if (tokens.dim() != 2) throw new ArgumentException($"tokens must be [contexts, pos]; got {ShapeText.Of(tokens.shape)}.", nameof(tokens));
        using var scope = torch.NewDisposeScope();
        var valid = torch.ones(tokens.shape, ScalarType.Bool); // [contexts, pos]
        if (options.SkipFirstPosition) valid[.., 0] = false;
        foreach (int id in options.ExcludedTokenIds) valid &= tokens.cpu() != id;
        long tokensRead = valid.sum().item<long>();

        int[] chosen = options.Features?.ToArray() ?? DensestFeatures(reader, encoder, tokens, valid, options);
        var acts = ReadFeatures(reader, encoder, tokens, chosen, options.BatchSize).masked_fill(valid.logical_not().unsqueeze(-1), 0); // [contexts, pos, F]

        var (logitNote, logits) = LogitEffects(W_dec, W_U, chosen);
        var ids = tokens.to(ScalarType.Int32).cpu();
        var strings = new Dictionary<int, IReadOnlyList<string>>();
        IReadOnlyList<string> StringsOf(int row) =>
            strings.TryGetValue(row, out var s) ? s : strings[row] = toStrTokens(ids[row].data<int>().ToArray());
        var generator = new Generator((ulong)options.Seed);

        var features = new List<FeatureData>();
        for (int k = 0; k < chosen.Length; k++)
        {
            var a = acts[.., .., k].contiguous(); // [contexts, pos]
            var firing = (a > 0) & valid; // [contexts, pos]
            long fired = firing.sum().item<long>();
            float max = fired == 0 ? 0 : a.max().item<float>();
            double mean = fired == 0 ? double.NaN : a.masked_select(firing).mean().item<float>();
            ContextExample Example(long flat) => MakeExample(a, (int)(flat / a.shape[1]), (int)(flat % a.shape[1]), StringsOf, options);

            var flatActs = a.view(-1); // [contexts · pos]
            var top = flatActs.masked_fill(firing.view(-1).logical_not(), float.NegativeInfinity).topk((int)Math.Min(options.TopExamples, fired));
            var topExamples = top.indexes.data<long>().ToArray().Select(Example).ToList();

            var intervals = new List<ActivationInterval>();
            for (int i = 0; fired > 0 && i < options.Intervals; i++)
            {
                double low = max * i / options.Intervals, high = max * (i + 1) / options.Intervals;
                var inside = (firing.view(-1) & (flatActs > low) & (flatActs <= high)).nonzero().view(-1); // [count]
                long count = inside.shape[0];
                var picked = inside.index_select(0, torch.randperm(count, generator: generator).narrow(0, 0, Math.Min(count, options.SamplesPerInterval)));
                var samples = picked.data<long>().ToArray().Select(Example).OrderByDescending(e => e.Activation).ToList();
                intervals.Add(new ActivationInterval(low, high, count, samples));
            }

            ActivationHistogram? histogram = null;
            if (fired > 0)
            {
                histogram = new ActivationHistogram(0, max, options.HistogramBins);
                histogram.Add(a.masked_select(firing));
            }
            var (topLogits, bottomLogits) = logits is null ? (null, null) : TopAndBottom(logits[k], options.LogitTokens, toStrTokens);
            features.Add(new FeatureData(chosen[k], (double)fired / Math.Max(tokensRead, 1), max, mean, topExamples, intervals, topLogits, bottomLogits, histogram));
        }
        return new FeatureDashboard(title, tokensRead, features, logitNote);
    }

    /// <summary>The page: a feature index with a search box, then one section per feature.</summary>
    public string ToHtml() => FeatureDashboardHtml.Render(this);

    /// <summary>Writes <see cref="ToHtml"/> through a temporary file.</summary>
    public void Save(string path) => IO.AtomicFile.WriteAllText(path, ToHtml());

    static int[] DensestFeatures(ActivationReader reader, FeatureEncoder encoder, Tensor tokens, Tensor valid, FeatureDashboardOptions options)
    {
        Tensor? counts = null;
        for (long start = 0; start < tokens.shape[0]; start += options.BatchSize)
        {
            using var scope = torch.NewDisposeScope();
            long rows = Math.Min(options.BatchSize, tokens.shape[0] - start);
            var f = Encode(reader, encoder, tokens.narrow(0, start, rows)); // [rows, pos, d_sae]
            var fired = ((f > 0) & valid.narrow(0, start, rows).unsqueeze(-1)).sum([0, 1]); // [d_sae]
            counts = counts is null ? fired.MoveToOuterDisposeScope() : counts.add_(fired);
        }
        var order = counts!.sort(descending: true, stable: true);
        return [.. order.Indices.data<long>().ToArray().Zip(order.Values.data<long>().ToArray())
            .Where(p => p.Second > 0).Take(options.TopByDensity).Select(p => (int)p.First)];
    }

    static Tensor ReadFeatures(ActivationReader reader, FeatureEncoder encoder, Tensor tokens, int[] features, int batchSize)
    {
        var index = torch.tensor(features.Select(f => (long)f).ToArray());
        var parts = new List<Tensor>();
        for (long start = 0; start < tokens.shape[0]; start += batchSize)
        {
            using var scope = torch.NewDisposeScope();
            var f = Encode(reader, encoder, tokens.narrow(0, start, Math.Min(batchSize, tokens.shape[0] - start))); // [rows, pos, d_sae]
            if (features.Any(i => i < 0 || i >= f.shape[2]))
                throw new ArgumentOutOfRangeException(nameof(features), $"Features must be in [0, {f.shape[2] - 1}] (d_sae = {f.shape[2]}); asked for {string.Join(", ", features)}.");
            parts.Add(f.index_select(2, index.to(f.device)).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope()); // [rows, pos, F]
        }
        return torch.cat(parts, 0); // [contexts, pos, F]
    }

    static Tensor Encode(ActivationReader reader, FeatureEncoder encoder, Tensor tokens)
    {
        var acts = reader(tokens);
        foreach (var extra in acts.Skip(1)) extra.Dispose();
        using var x = acts[0];
        long batch = x.shape[0], pos = x.shape[1];
        using var _ = torch.no_grad();
        var f = encoder(x.reshape(batch * pos, x.shape[2])); // [batch · pos, d_sae]
        return f.view(batch, pos, -1); // [batch, pos, d_sae]
    }

    static (string? Note, Tensor? Logits) LogitEffects(Tensor? W_dec, Tensor? W_U, int[] features)
    {
        if (W_dec is null || W_U is null)
            return ("Logit effects are not shown: they need the decoder W_dec and the model's unembedding W_U.", null);
        if (W_dec.dim() != 2 || W_U.dim() != 2 || W_dec.shape[1] != W_U.shape[0])
            return ($"Logit effects are not shown: W_dec {ShapeText.Of(W_dec.shape)} writes a space W_U {ShapeText.Of(W_U.shape)} does not read (the SAE is not on the residual stream).", null);
        using var _ = torch.no_grad();
        var rows = W_dec.index_select(0, torch.tensor(features.Select(f => (long)f).ToArray()).to(W_dec.device)); // [F, d_in]
        return (null, rows.to(W_U.dtype).MatMul(W_U).to(ScalarType.Float32).cpu()); // [F, d_vocab]
    }

    static (IReadOnlyList<LogitEffect>, IReadOnlyList<LogitEffect>) TopAndBottom(Tensor logits, int n, Func<IReadOnlyList<int>, IReadOnlyList<string>> toStrTokens)
    {
        n = (int)Math.Min(n, logits.shape[0]);
        List<LogitEffect> Pick(bool largest)
        {
            var (values, indices) = logits.topk(n, largest: largest);
            int[] ids = [.. indices.data<long>().ToArray().Select(i => (int)i)];
            var names = toStrTokens(ids);
            return [.. ids.Select((id, i) => new LogitEffect(id, names[i], values[i].item<float>()))];
        }
        return (Pick(true), Pick(false));
    }

    static ContextExample MakeExample(Tensor acts, int row, int position, Func<int, IReadOnlyList<string>> stringsOf, FeatureDashboardOptions options)
    {
        int from = Math.Max(0, position - options.WindowBefore), to = (int)Math.Min(acts.shape[1], position + options.WindowAfter + 1);
        float[] values = acts[row].data<float>().ToArray();
        var strings = stringsOf(row);
        var window = Enumerable.Range(from, to - from).Select(p => new TokenActivation(strings[p], values[p])).ToList();
        return new ContextExample(row, position, values[position], window, position - from);
    }
}
