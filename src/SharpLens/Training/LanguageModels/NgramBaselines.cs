using SharpLens.Training.Data;

namespace SharpLens.Training.LanguageModels;

/// <summary>What a language model must beat: count-based unigram and bigram models of the same tokens.</summary>
/// <param name="Unigram">Mean loss (nats/token) of add-one unigram counts from the training split.</param>
/// <param name="Bigram">Mean loss of λ·c(a b)/c(a) + (1 − λ)·unigram(b), λ the best of a grid on the validation split itself (generous to the baseline).</param>
public sealed record NgramBaselineLosses(double Unigram, double Bigram, double BigramLambda, long Predictions);

/// <summary>
/// Unigram and bigram baselines scored on exactly the predictions <see cref="LanguageModelTrainer.Evaluate"/> scores:
/// validation tokens 1 … n·context of windows of context + 1 advancing by context.
/// </summary>
public static class NgramBaselines
{
    public static NgramBaselineLosses Measure(TokenShard train, TokenShard validation, int vocab, int context)
    {
        var trainTokens = train.Read(0, checked((int)train.Length));
        var unigram = new long[vocab];
        // Sparse: a training split has at most one distinct pair per token, while vocab² counts would be 10 GB for GPT-2's 50,257 ids.
        var bigram = new Dictionary<long, int>();
        var predecessors = new long[vocab];
        for (int i = 0; i < trainTokens.Length; i++)
        {
            unigram[trainTokens[i]]++;
            if (i > 0)
            {
                long pair = trainTokens[i - 1] * (long)vocab + trainTokens[i];
                bigram[pair] = bigram.GetValueOrDefault(pair) + 1;
                predecessors[trainTokens[i - 1]]++;
            }
        }
        double total = trainTokens.Length;

        long windows = (validation.Length - (context + 1)) / context + 1;
        int predicted = checked((int)(windows * context));
        var tokens = validation.Read(0, predicted + 1);
        double[] lambdas = [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95];
        var bigramLoss = new double[lambdas.Length];
        double unigramLoss = 0;
        for (int t = 1; t <= predicted; t++)
        {
            long previous = tokens[t - 1], next = tokens[t];
            double pUnigram = (unigram[next] + 1) / (total + vocab);
            unigramLoss -= Math.Log(pUnigram);
            double pBigram = predecessors[previous] > 0 ? bigram.GetValueOrDefault(previous * vocab + next) / (double)predecessors[previous] : 0;
            for (int k = 0; k < lambdas.Length; k++) bigramLoss[k] -= Math.Log(lambdas[k] * pBigram + (1 - lambdas[k]) * pUnigram);
        }
        int best = Array.IndexOf(bigramLoss, bigramLoss.Min());
        return new NgramBaselineLosses(unigramLoss / predicted, bigramLoss[best] / predicted, lambdas[best], predicted);
    }
}
