using SharpLens.Corpora;
using SharpLens.Models;
using SharpLens.Techniques;
using SharpLens.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Training.LanguageModels;

/// <summary>Next-word accuracy of one part-of-speech group: words whose every token the model predicted (greedily, teacher-forced).</summary>
public sealed record PartOfSpeechAccuracy(string Group, long Words, double Accuracy);

/// <summary>A prompt and what the model wrote after it, greedily and sampled (temperature 1, top-k 40).</summary>
public sealed record Generation(string Prompt, string Greedy, string Sampled);

/// <summary>What a language model has learned, measured with the project's own tools on its corpus's validation split.</summary>
/// <param name="LossByPosition">Mean loss of the prediction at each position 1 … context of validation windows (the in-context-learning curve).</param>
/// <param name="InContextLearningScore">Olsson et al.'s ICL score: mean loss over the last quarter of positions minus mean loss at positions 8–15 (negative: later tokens are easier).</param>
/// <param name="InductionHeads">Heads by induction score on repeated real text ([BOS, s, s], s a validation excerpt), best first.</param>
/// <param name="RepeatLossFirst">Mean loss on the first copy of the repeated excerpts; <paramref name="RepeatLossSecond"/> on the second.</param>
public sealed record LanguageModelFindings(
    string Model, double ValidationLoss, double ValidationLossPerWord, NgramBaselineLosses Baselines,
    double[] LossByPosition, double InContextLearningScore,
    IReadOnlyList<ScoredHead> InductionHeads, IReadOnlyList<ScoredHead> PreviousTokenHeads, double RepeatLossFirst, double RepeatLossSecond,
    double NextWordAccuracy, IReadOnlyList<PartOfSpeechAccuracy> PartOfSpeech, IReadOnlyList<Generation> Generations)
{
    public double Perplexity => Math.Exp(ValidationLoss);
    public double PerplexityPerWord => Math.Exp(ValidationLossPerWord);
}

/// <summary>
/// Measures a trained language model: validation loss per token and per word against unigram and bigram baselines on
/// the same predictions, loss by token position, induction heads (<see cref="HeadDetectors"/>) on repeated validation
/// text, next-word accuracy by Brown part-of-speech group, and a few generations.
/// </summary>
public static class LanguageModelEvaluation
{
    static readonly string[] Prompts = ["The", "He said that", "In the morning, the", "The President of the United States", "She looked at him and"];

    /// <param name="modelFolder">A folder <c>sharplens train</c> saved, or one of its checkpoints (<c>OUT.checkpoints/step-N</c>).</param>
    /// <param name="tokenizerFolder">Where a checkpoint's tokenizer.json is (default: the finished folder OUT beside the checkpoints).</param>
    public static LanguageModelFindings Run(string modelFolder, string corpus = "brown", string? cacheRoot = null, string? brownFolder = null,
        double validationFraction = 0.05, IProgress<string>? log = null, string? tokenizerFolder = null)
    {
        var (loaded, architecture, tokenizer, name) = LanguageModelFolder.Open(modelFolder, tokenizerFolder);
        using var model = loaded;
        model.eval();
        var text = TextCorpus.Open(corpus, cacheRoot, brownFolder);
        var separators = architecture == LanguageModelArchitecture.Gpt2 ? DocumentSeparators.Gpt2 : DocumentSeparators.Llama;
        var choice = tokenizer is null ? TokenizerChoice.Gpt2 : TokenizerChoice.FromFolder(tokenizer);
        using var data = TokenizedCorpus.Prepare(text, choice, separators, validationFraction, cacheRoot, log);
        if (data.Tokenizer.VocabSize > model.Config.DVocab)
            throw new LanguageModelSettingsException($"The tokenizer ({tokenizer ?? "GPT-2's"}) has {data.Tokenizer.VocabSize} ids but {name} has d_vocab {model.Config.DVocab}: give the tokenizer the model was trained with.");
        int context = model.Config.NCtx;

        log?.Report("Validation loss and baselines");
        var validation = LanguageModelTrainer.Evaluate(model, data.Validation, context, 16, maxWindows: null);
        var baselines = NgramBaselines.Measure(data.Train, data.Validation, model.Config.DVocab, context);

        log?.Report("Loss by position");
        var byPosition = LossByPosition(model, data.Validation, context);
        int quarter = Math.Max(1, context / 4);
        double icl = byPosition.TakeLast(quarter).Average() - byPosition.Skip(7).Take(8).DefaultIfEmpty(byPosition[0]).Average();

        log?.Report("Induction heads on repeated validation text");
        var (induction, previous, first, second) = InductionOnRepeatedText(model, data, context);

        log?.Report("Next-word accuracy by part of speech");
        var (accuracy, pos) = corpus.StartsWith("brown", StringComparison.Ordinal)
            ? PartOfSpeech(model, data, brownFolder is null ? BrownCorpus.Download(cacheRoot) : BrownCorpus.Open(brownFolder), text, validationFraction)
            : (double.NaN, []);

        log?.Report("Generations");
        var generations = Prompts.Select(p => Generate(model, data, p)).ToList();
        return new LanguageModelFindings(name, validation.Loss, validation.LossPerWord, baselines,
            byPosition, icl, induction, previous, first, second, accuracy, pos, generations);
    }

    /// <summary>Mean loss at each position of the validation windows (context + 1 tokens, advancing by context).</summary>
    public static double[] LossByPosition(HookedTransformer model, TokenShard shard, int context)
    {
        using var _ = no_grad();
        var sum = new double[context];
        long rows = 0;
        foreach (var windows in shard.StridedWindows(context + 1, context, maxWindows: null, batchSize: 16))
        {
            using var scope = NewDisposeScope();
            var logits = model.Run(windows[.., ..^1]); // [batch, context, d_vocab]
            var perToken = -logits.log_softmax(-1).gather(-1, windows[.., 1..].unsqueeze(-1)).squeeze(-1); // [batch, context]
            var batchSum = perToken.to(ScalarType.Float64).sum([0]).data<double>().ToArray(); // [context]
            for (int p = 0; p < context; p++) sum[p] += batchSum[p];
            rows += windows.shape[0];
            windows.Dispose();
        }
        return [.. sum.Select(s => s / rows)];
    }

    static (IReadOnlyList<ScoredHead>, IReadOnlyList<ScoredHead>, double, double) InductionOnRepeatedText(HookedTransformer model, TokenizedCorpus data, int context)
    {
        int half = Math.Min(50, (context - 1) / 2);
        int count = (int)Math.Min(32, (data.Validation.Length - 1) / half);
        var rows = new List<long[]>();
        for (int i = 0; i < count; i++)
        {
            var excerpt = data.Validation.Read(1 + (long)i * half, half);
            rows.Add([data.BosTokenId, .. excerpt, .. excerpt]);
        }
        using var tokens = tensor(rows.SelectMany(r => r).ToArray(), [rows.Count, 2 * half + 1]); // [batch, 1 + 2·half]
        var scores = HeadDetectors.ScoreHeads(model, tokens);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var perToken = Trainer.PerTokenLoss(model, tokens); // [batch, 2·half]
        double first = perToken[.., ..half].mean().ToDouble(), second = perToken[.., half..].mean().ToDouble();
        return (HeadScores.Ranked(scores.Induction), HeadScores.Ranked(scores.PreviousToken), first, second);
    }

    /// <summary>Coarse part-of-speech groups of the Brown tag set.</summary>
    public static string Group(string tag)
    {
        string t = tag.Split('-', '+')[0].TrimEnd('*', '$');
        if (t.Length == 0 || !char.IsLetter(t[0])) return "punctuation";
        return t switch
        {
            _ when t.StartsWith("nn", StringComparison.Ordinal) || t.StartsWith("nr", StringComparison.Ordinal) => "noun",
            _ when t.StartsWith("np", StringComparison.Ordinal) => "proper noun",
            _ when t.StartsWith("vb", StringComparison.Ordinal) || t.StartsWith("be", StringComparison.Ordinal) || t.StartsWith("hv", StringComparison.Ordinal) || t.StartsWith("do", StringComparison.Ordinal) || t == "md" => "verb",
            _ when t.StartsWith("jj", StringComparison.Ordinal) => "adjective",
            _ when t.StartsWith("rb", StringComparison.Ordinal) || t is "ql" or "qlp" or "wrb" => "adverb",
            _ when t is "at" or "ap" or "abn" or "abx" or "dt" or "dti" or "dts" or "dtx" or "wdt" => "determiner",
            "in" => "preposition",
            _ when t.StartsWith("pp", StringComparison.Ordinal) || t.StartsWith("wp", StringComparison.Ordinal) => "pronoun",
            "cc" or "cs" => "conjunction",
            "cd" or "od" => "number",
            "to" => "to",
            _ => "other",
        };
    }

    /// <summary>
    /// Teacher-forced greedy accuracy per word of the Brown validation files: a word counts as predicted when the
    /// model's top token is right at each of the word's tokens (its leading space included).
    /// </summary>
    static (double, IReadOnlyList<PartOfSpeechAccuracy>) PartOfSpeech(HookedTransformer model, TokenizedCorpus data, BrownCorpus brown, TextCorpus text, double validationFraction)
    {
        var (_, validationDocuments) = text.Split(validationFraction);
        var right = new Dictionary<string, long>();
        var seen = new Dictionary<string, long>();
        int context = model.Config.NCtx;
        foreach (var document in validationDocuments)
        {
            // The document as TextCorpus.FromBrown wrote it, with each word's start.
            var words = new List<(int Start, int End, string Tag)>();
            var pieces = new List<string>();
            int offset = 0;
            foreach (var sentence in brown.SentencesOf(document.Id))
            {
                var (sentenceText, starts) = BrownCorpus.DetokenizeWithStarts([.. sentence.Words.Select(w => w.Word)]);
                if (pieces.Count > 0) offset++; // the joining space
                for (int i = 0; i < starts.Length; i++)
                {
                    int length = sentence.Words[i].Word is "``" or "''" ? 1 : sentence.Words[i].Word.Length;
                    words.Add((offset + starts[i], offset + starts[i] + length, sentence.Words[i].Tag));
                }
                pieces.Add(sentenceText);
                offset += sentenceText.Length;
            }
            string joined = string.Join(" ", pieces);
            if (joined != document.Text) continue; // not the text that was tokenized; skip rather than misalign

            var ids = data.Tokenizer.Encode(joined);
            var tokenStart = new int[ids.Count + 1];
            var strings = data.Tokenizer.ToStrTokens(ids);
            for (int i = 0; i < ids.Count; i++) tokenStart[i + 1] = tokenStart[i] + strings[i].Length;
            if (tokenStart[^1] != joined.Length) continue; // not ASCII-aligned

            var correct = CorrectPredictions(model, [data.BosTokenId, .. ids], context); // correct[i]: token i of ids predicted
            int token = 0;
            foreach (var (start, end, tag) in words)
            {
                while (token < ids.Count && tokenStart[token + 1] <= start) token++;
                bool ok = true;
                for (int k = token; k < ids.Count && tokenStart[k] < end; k++) ok &= correct[k];
                string group = Group(tag);
                seen[group] = seen.GetValueOrDefault(group) + 1;
                if (ok) right[group] = right.GetValueOrDefault(group) + 1;
            }
        }
        long total = seen.Values.Sum();
        double overall = total == 0 ? double.NaN : right.Values.Sum() / (double)total;
        return (overall, [.. seen.OrderByDescending(p => p.Value).Select(p => new PartOfSpeechAccuracy(p.Key, p.Value, right.GetValueOrDefault(p.Key) / (double)p.Value))]);
    }

    /// <summary>For a stream [BOS, t₀, t₁, …]: whether the argmax prediction for each tᵢ was tᵢ, in windows of the model's context.</summary>
    static bool[] CorrectPredictions(HookedTransformer model, long[] stream, int context)
    {
        var correct = new bool[stream.Length - 1];
        using var _ = no_grad();
        for (int start = 0; start < stream.Length - 1; start += context)
        {
            using var scope = NewDisposeScope();
            int length = Math.Min(context, stream.Length - 1 - start);
            var input = tensor(stream[start..(start + length)]).unsqueeze(0); // [1, length]
            var predicted = model.Run(input)[0].argmax(-1).data<long>().ToArray(); // [length]
            for (int i = 0; i < length; i++) correct[start + i] = predicted[i] == stream[start + i + 1];
        }
        return correct;
    }

    static Generation Generate(HookedTransformer model, TokenizedCorpus data, string prompt)
    {
        using var scope = NewDisposeScope();
        var ids = data.Tokenizer.Encode(prompt);
        var tokens = tensor(new long[] { data.BosTokenId }.Concat(ids.Select(i => (long)i)).ToArray()).unsqueeze(0); // [1, pos]
        string Continue(Tensor output) => data.Tokenizer.Decode(output[0, (int)tokens.shape[1]..].data<long>().ToArray().Select(i => (int)i));
        var greedy = model.Generate(tokens, 30, temperature: 0);
        var sampled = model.Generate(tokens, 30, temperature: 1.0, topK: 40, seed: 1);
        return new Generation(prompt, Continue(greedy), Continue(sampled));
    }
}
