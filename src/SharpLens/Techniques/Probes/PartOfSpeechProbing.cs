using SharpLens.Corpora;
using SharpLens.Models.Encoder;
using static TorchSharp.torch;

namespace SharpLens.Techniques;

/// <summary>What <see cref="PartOfSpeechProbing.Run"/> samples and fits.</summary>
public sealed record PosProbeSettings
{
    /// <summary>How many Brown Corpus sentences to sample (of those with 3 … <see cref="MaxWords"/> words).</summary>
    public int Sentences { get; init; } = 800;
    public int MaxWords { get; init; } = 40;
    /// <summary>Share of the sentences held out: every word of a held-out sentence is a test example.</summary>
    public double TestFraction { get; init; } = 0.25;
    /// <summary>Seeds the sentence sample, the split and the control task's tags.</summary>
    public long Seed { get; init; }
    public int BatchSize { get; init; } = 32;
    /// <summary>The probe: multinomial logistic regression (full-batch Adam).</summary>
    public ProbeSettings Probe { get; init; } = new();

    public PosProbeSettings Validated()
    {
        if (Sentences < 8) throw new SharpLensArgumentException("--sentences", $"--sentences must be at least 8 (got {Sentences}): a probe needs train and test sentences.");
        if (MaxWords is < 3 or > 200) throw new SharpLensArgumentException("--max-words", $"--max-words must be between 3 and 200 (got {MaxWords}).");
        if (TestFraction is <= 0 or >= 1) throw new SharpLensArgumentException("--test-fraction", $"--test-fraction must be between 0 and 1 (got {TestFraction}).");
        if (BatchSize < 1) throw new SharpLensArgumentException("--batch", $"--batch must be at least 1 (got {BatchSize}).");
        if (Probe.Steps < 1) throw new SharpLensArgumentException("--steps", $"--steps must be at least 1 (got {Probe.Steps}).");
        if (Probe.L2 < 0) throw new SharpLensArgumentException("--l2", $"--l2 must not be negative (got {Probe.L2}).");
        Probe.Validated();
        return this;
    }
}

/// <summary>One depth of the encoder: held-out accuracy of a probe for the real tags and for the control task's tags.</summary>
public sealed record PosProbeLayer(int Depth, string Hook, double RealTrainAccuracy, double RealTestAccuracy, double ControlTrainAccuracy, double ControlTestAccuracy)
{
    /// <summary>Hewitt &amp; Liang (2019): accuracy on the linguistic task minus accuracy on the control task.</summary>
    public double Selectivity => RealTestAccuracy - ControlTestAccuracy;
}

public sealed record PosProbeResult(
    PosProbeSettings Settings, IReadOnlyList<string> Tags, int TrainSentences, int TestSentences, int TrainWords, int TestWords,
    int WordTypes, double MajorityBaseline, IReadOnlyList<PosProbeLayer> Layers);

/// <summary>
/// Part-of-speech probing across an encoder's layers (the Tenney et al. 2019 pattern) with Hewitt &amp; Liang's (2019)
/// control task. Each word of a sampled Brown Corpus sentence is one example: the encoder's hidden state at the word's
/// first word piece, at every depth (the embeddings, then each block's output), labelled by its Brown tag. The control
/// task gives every word type (lower-cased: the encoder is uncased) one tag drawn once from the empirical tag
/// distribution of the training words, so a probe can only score on it by memorising word identities. A probe that is
/// accurate on real tags but not on control tags (high selectivity) reads part of speech from the representation
/// rather than learning the task itself.
/// </summary>
public static class PartOfSpeechProbing
{
    /// <summary>
    /// A Brown tag without its modifiers: "nn-tl" (title), "nn-hl" (headline), "nn-nc" (cited), "fw-nn" (foreign) →
    /// "nn"; a contraction's compound tag keeps its first part ("ppss+md" → "ppss"); the negation mark goes ("bez*" → "bez").
    /// </summary>
    public static string BaseTag(string brownTag)
    {
        string t = brownTag.ToLowerInvariant();
        if (!t.Any(char.IsLetter)) return t; // punctuation tags: "--", "''", ",", "(" …
        if (t.StartsWith("fw-", StringComparison.Ordinal) && t.Length > 3) t = t[3..];
        foreach (char c in "+-") { int i = t.IndexOf(c, 1); if (i > 0) t = t[..i]; }
        if (t.Length > 1) t = t.TrimEnd('*');
        return t;
    }

    /// <summary>The depths probed: hook_full_embed, then blocks.L.hook_normalized_resid_post (Hugging Face's hidden_states).</summary>
    public static IReadOnlyList<string> Hooks(HookedEncoder encoder) =>
        [.. Enumerable.Range(0, encoder.Config.NLayers).Select(l => $"blocks.{l}.hook_normalized_resid_post").Prepend("hook_full_embed")];

    /// <summary>A seeded sample of sentences with 3 … maxWords words, in a fixed order.</summary>
    public static List<BrownSentence> Sample(IEnumerable<BrownSentence> corpus, PosProbeSettings settings)
    {
        var eligible = corpus.Where(s => s.Words.Count >= 3 && s.Words.Count <= settings.MaxWords).ToArray();
        if (eligible.Length < settings.Sentences)
            throw new SharpLensArgumentException("--sentences", $"The corpus has only {eligible.Length} sentences of 3 to {settings.MaxWords} words; ask for fewer with --sentences.");
        new Random((int)settings.Seed).Shuffle(eligible);
        return [.. eligible.Take(settings.Sentences)];
    }

    /// <summary>
    /// The control task: one tag per word type, drawn from the empirical distribution of <paramref name="trainTags"/>
    /// (ids), types visited in order of first appearance so the draw is reproducible from the seed.
    /// </summary>
    public static Dictionary<string, int> ControlTags(IEnumerable<string> typesInOrder, IReadOnlyList<int> trainTags, long seed)
    {
        var random = new Random(unchecked((int)seed * 7919 + 17));
        var control = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var type in typesInOrder)
            if (!control.ContainsKey(type)) control[type] = trainTags[random.Next(trainTags.Count)]; // uniform over tokens = the empirical distribution
        return control;
    }

    public static PosProbeResult Run(HookedEncoder encoder, IEnumerable<BrownSentence> corpus, PosProbeSettings settings, IProgress<string>? progress = null)
    {
        settings = settings.Validated();
        var tokenizer = encoder.Tokenizer ?? throw new SharpLensArgumentException("--model",
            $"{encoder.Config.ModelName} has no WordPiece tokenizer attached (vocab.txt); part-of-speech probing needs one to align words with word pieces.");
        var sentences = Sample(corpus, settings);
        var (trainIds, testIds) = ProbeMetrics.TrainTestSplit(sentences.Count, settings.TestFraction, settings.Seed);
        var isTest = new bool[sentences.Count];
        foreach (var i in testIds) isTest[i] = true;

        // Word pieces per sentence: [CLS] pieces(w1) pieces(w2) … [SEP]; a word is read at its first piece. BERT's basic
        // tokenizer splits on spaces first, so word-by-word pieces are the pieces of the sentence joined with spaces.
        var pieces = new List<int[]>();
        var firsts = new List<int[]>();    // per sentence: position of each kept word's first piece
        var words = new List<(string Type, string Tag, bool Test)>();
        for (int s = 0; s < sentences.Count; s++)
        {
            var ids = new List<int> { tokenizer.ClsTokenId };
            var first = new List<int>();
            foreach (var w in sentences[s].Words)
            {
                var p = tokenizer.Encode(w.Word, addSpecialTokens: false);
                if (p.Count == 0) continue; // nothing the tokenizer keeps (e.g. a control character)
                first.Add(ids.Count);
                ids.AddRange(p);
                words.Add((w.Word.ToLowerInvariant(), BaseTag(w.Tag), isTest[s]));
            }
            ids.Add(tokenizer.SepTokenId);
            if (ids.Count > encoder.Config.NCtx)
                throw new SharpLensArgumentException("--max-words", $"A sentence of {sentences[s].Words.Count} words became {ids.Count} word pieces, more than the model's {encoder.Config.NCtx}; lower --max-words.");
            pieces.Add([.. ids]);
            firsts.Add([.. first]);
        }

        // Tag ids by frequency in the sample (ties in ordinal order), so the numbering is fixed by the data.
        var tags = words.GroupBy(w => w.Tag).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key).ToList();
        var tagId = tags.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i, StringComparer.Ordinal);
        var real = words.Select(w => tagId[w.Tag]).ToArray();
        var trainTags = words.Select((w, i) => (w, i)).Where(x => !x.w.Test).Select(x => real[x.i]).ToList();
        var control = ControlTags(words.Select(w => w.Type), trainTags, settings.Seed);
        var controlLabels = words.Select(w => control[w.Type]).ToArray();

        var hooks = Hooks(encoder);
        var activations = Activations(encoder, pieces, firsts, hooks, settings.BatchSize, progress); // hook → [words, d_model]
        using var scope = NewDisposeScope();
        var testMask = tensor(words.Select(w => w.Test).ToArray());
        var trainIndex = nonzero(~testMask).squeeze(1); // [train words]
        var testIndex = nonzero(testMask).squeeze(1);   // [test words]
        var realY = tensor(real.Select(x => (long)x).ToArray());
        var controlY = tensor(controlLabels.Select(x => (long)x).ToArray());

        int majority = trainTags.GroupBy(t => t).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;
        double baseline = ProbeMetrics.Accuracy(full_like(realY[testIndex], majority), realY[testIndex]);

        var layers = new List<PosProbeLayer>();
        for (int depth = 0; depth < hooks.Count; depth++)
        {
            progress?.Report($"probing {hooks[depth]} ({depth + 1}/{hooks.Count})");
            var x = activations[hooks[depth]];
            var (realTrain, realTest) = FitAndScore(x, realY, trainIndex, testIndex, tags.Count, settings.Probe);
            var (controlTrain, controlTest) = FitAndScore(x, controlY, trainIndex, testIndex, tags.Count, settings.Probe);
            layers.Add(new PosProbeLayer(depth, hooks[depth], realTrain, realTest, controlTrain, controlTest));
        }
        foreach (var a in activations.Values) a.Dispose();
        return new PosProbeResult(settings, tags, trainIds.Length, testIds.Length, words.Count(w => !w.Test), words.Count(w => w.Test),
            control.Count, baseline, layers);
    }

    static (double Train, double Test) FitAndScore(Tensor x, Tensor y, Tensor trainIndex, Tensor testIndex, int classes, ProbeSettings settings)
    {
        using var scope = NewDisposeScope();
        using var probe = LogisticRegression.Fit(x[trainIndex], y[trainIndex], settings, classes);
        return (ProbeMetrics.Accuracy(probe.Predict(x[trainIndex]), y[trainIndex]), ProbeMetrics.Accuracy(probe.Predict(x[testIndex]), y[testIndex]));
    }

    /// <summary>Each word's hidden state at its first piece, at every hook: hook → [words, d_model].</summary>
    static Dictionary<string, Tensor> Activations(HookedEncoder encoder, List<int[]> pieces, List<int[]> firsts, IReadOnlyList<string> hooks,
        int batchSize, IProgress<string>? progress)
    {
        var chunks = hooks.ToDictionary(h => h, _ => new List<Tensor>());
        var wanted = hooks.ToHashSet(StringComparer.Ordinal);
        for (int start = 0; start < pieces.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            int n = Math.Min(batchSize, pieces.Count - start);
            int length = pieces.Skip(start).Take(n).Max(p => p.Length);
            var ids = new long[n * length];
            var mask = new long[n * length];
            var where = new List<long>(); // flat index b·length + position of each word's first piece
            for (int b = 0; b < n; b++)
            {
                var p = pieces[start + b];
                for (int i = 0; i < length; i++)
                {
                    ids[b * length + i] = i < p.Length ? p[i] : encoder.Tokenizer!.PadTokenId; // right padding
                    mask[b * length + i] = i < p.Length ? 1 : 0;
                }
                foreach (var f in firsts[start + b]) where.Add((long)b * length + f);
            }
            var tokens = tensor(ids, [n, length]);        // [batch, pos]
            var attention = tensor(mask, [n, length]);    // [batch, pos]
            var index = tensor(where.ToArray());          // [words in batch]
            var (_, cache) = encoder.RunWithCache(tokens, wanted.Contains, attention, zeros_like(tokens));
            using (cache)
                foreach (var hook in hooks)
                    chunks[hook].Add(cache[hook].reshape(n * length, -1).index_select(0, index).to(ScalarType.Float32).cpu().MoveToOuterDisposeScope()); // [words in batch, d_model]
            progress?.Report($"encoded {start + n}/{pieces.Count} sentences");
        }
        return chunks.ToDictionary(kv => kv.Key, kv =>
        {
            var all = cat(kv.Value, 0); // [words, d_model]
            foreach (var c in kv.Value) c.Dispose();
            return all;
        });
    }
}
