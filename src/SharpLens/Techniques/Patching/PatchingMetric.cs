using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>What a patching experiment measures at each prompt's last real position.</summary>
public enum PatchingMetric
{
    /// <summary>logit[answer] − logit[wrong answer].</summary>
    LogitDifference,
    /// <summary>softmax(logits)[answer].</summary>
    AnswerProbability,
    /// <summary>−log softmax(logits)[answer]: lower is better, yet the normalised form still reads 0 = corrupted, 1 = clean.</summary>
    AnswerLoss,
}

/// <summary>The metrics, computed per prompt, and their normalised form.</summary>
public static class PatchingMetrics
{
    /// <summary>
    /// The metric per row [rows] for logits [rows, pos, d_vocab]; <paramref name="lastPositions"/>, <paramref name="answers"/>
    /// and <paramref name="wrongAnswers"/> are [rows]. Differentiable, so attribution patching can take its gradient.
    /// </summary>
    public static Tensor PerPrompt(PatchingMetric metric, Tensor logits, Tensor lastPositions, Tensor answers, Tensor wrongAnswers)
    {
        long rows = logits.shape[0], vocab = logits.shape[2];
        var index = lastPositions.to(logits.device).view(rows, 1, 1).expand(rows, 1, vocab);
        var final = logits.gather(1, index).squeeze(1); // [rows, d_vocab]
        var answer = answers.to(logits.device).view(rows, 1);
        return metric switch
        {
            PatchingMetric.LogitDifference => (final.gather(1, answer) - final.gather(1, wrongAnswers.to(logits.device).view(rows, 1))).squeeze(1), // [rows]
            PatchingMetric.AnswerProbability => final.softmax(-1).gather(1, answer).squeeze(1),
            PatchingMetric.AnswerLoss => -final.log_softmax(-1).gather(1, answer).squeeze(1),
            _ => throw new ArgumentOutOfRangeException(nameof(metric), metric, "Unknown patching metric."),
        };
    }

    /// <summary>The metric per pair on logits of the pairs' own prompts (clean or corrupted) [batch, pos, d_vocab].</summary>
    public static Tensor PerPrompt(PatchingMetric metric, Tensor logits, PromptPairs pairs) =>
        PerPrompt(metric, logits, pairs.LastPositions, pairs.Answers, pairs.WrongAnswers);

    /// <summary>(value − corrupted) / (clean − corrupted): 0 where the patch changed nothing, 1 where it restored the clean run.</summary>
    public static double Normalise(double value, double clean, double corrupted) => (value - corrupted) / CheckSpan(clean, corrupted);

    /// <summary>clean − corrupted, the normaliser; a patching experiment whose two runs agree cannot be normalised and is an error.</summary>
    public static double CheckSpan(double clean, double corrupted)
    {
        double span = clean - corrupted;
        if (Math.Abs(span) < 1e-12)
            throw new PatchingException("The clean and corrupted prompts give the same metric, so nothing can be normalised: " +
                "choose a corruption that changes the answer (check the answer and wrong-answer tokens).");
        return span;
    }
}

/// <summary>A patching experiment cannot run as asked (a missing component, a degenerate prompt pair, ...).</summary>
public sealed class PatchingException(string message) : SharpLensException(message);
