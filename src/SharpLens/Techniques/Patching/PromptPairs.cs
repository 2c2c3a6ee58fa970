using SharpLens.Models;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Techniques.Patching;

/// <summary>
/// Clean / corrupted prompt pairs with the token each clean prompt should predict next (the answer) and the one its
/// corrupted twin predicts instead (the wrong answer). Clean and corrupted of a pair share their length, so position
/// p of one lines up with position p of the other; pairs of different lengths are right-padded with an attention mask,
/// and the answer is read at each prompt's last real position.
/// </summary>
public sealed class PromptPairs : IDisposable
{
    /// <summary>[batch, pos] int64.</summary>
    public Tensor Clean { get; }
    /// <summary>[batch, pos] int64, the same shape as <see cref="Clean"/>.</summary>
    public Tensor Corrupted { get; }
    /// <summary>[batch] token the clean prompt should predict.</summary>
    public Tensor Answers { get; }
    /// <summary>[batch] token the corrupted prompt predicts instead.</summary>
    public Tensor WrongAnswers { get; }
    /// <summary>[batch, pos] 1 for real tokens, 0 for padding; null when no pair is padded.</summary>
    public Tensor? AttentionMask { get; }
    /// <summary>[batch] index of each prompt's last real token, where the answer is read.</summary>
    public Tensor LastPositions { get; }

    public long Count => Clean.shape[0];
    public long Positions => Clean.shape[1];

    /// <param name="clean">[batch, pos] or [pos] token ids.</param>
    /// <param name="corrupted">The same shape as <paramref name="clean"/>.</param>
    /// <param name="answers">[batch] (or one id per pair).</param>
    /// <param name="attentionMask">[batch, pos], shared by both prompts of a pair; null when nothing is padded.</param>
    public PromptPairs(Tensor clean, Tensor corrupted, Tensor answers, Tensor wrongAnswers, Tensor? attentionMask = null)
    {
        if (clean.dim() == 1) clean = clean.unsqueeze(0);
        if (corrupted.dim() == 1) corrupted = corrupted.unsqueeze(0);
        if (clean.dim() != 2 || !clean.shape.SequenceEqual(corrupted.shape))
            throw new ArgumentException($"clean {ShapeText.Of(clean.shape)} and corrupted {ShapeText.Of(corrupted.shape)} must be the same [batch, pos] shape: " +
                "patching lines positions up one to one. Give pairs of equal token length (pad both with the same mask if needed).", nameof(corrupted));
        long batch = clean.shape[0];
        answers = answers.reshape(-1);
        wrongAnswers = wrongAnswers.reshape(-1);
        if (answers.shape[0] != batch || wrongAnswers.shape[0] != batch)
            throw new ArgumentException($"Give one answer and one wrong answer per pair: {batch} pairs, {answers.shape[0]} answers, {wrongAnswers.shape[0]} wrong answers.", nameof(answers));
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(clean.shape))
            throw new ArgumentException($"attentionMask {ShapeText.Of(attentionMask.shape)} must match the prompts {ShapeText.Of(clean.shape)}.", nameof(attentionMask));

        Clean = clean.to(ScalarType.Int64).detach().DetachFromDisposeScope();
        Corrupted = corrupted.to(ScalarType.Int64).detach().DetachFromDisposeScope();
        Answers = answers.to(ScalarType.Int64).detach().DetachFromDisposeScope();
        WrongAnswers = wrongAnswers.to(ScalarType.Int64).detach().DetachFromDisposeScope();
        AttentionMask = attentionMask?.to(ScalarType.Int64).detach().DetachFromDisposeScope();
        using var scope = NewDisposeScope();
        var last = AttentionMask is null
            ? full(batch, Positions - 1, dtype: ScalarType.Int64)
            : (AttentionMask * arange(Positions, dtype: ScalarType.Int64)).argmax(1); // [batch]: last index holding a real token
        LastPositions = last.DetachFromDisposeScope();
    }

    /// <summary>One pair from token ids.</summary>
    public static PromptPairs FromTokens(IReadOnlyList<long> clean, IReadOnlyList<long> corrupted, long answer, long wrongAnswer) =>
        new(tensor(clean.ToArray()), tensor(corrupted.ToArray()), tensor(new[] { answer }), tensor(new[] { wrongAnswer }));

    /// <summary>
    /// Pairs from text with the model's tokenizer (BOS prepended when <paramref name="prependBos"/>). Each answer must be
    /// one token (e.g. " Mary" with its leading space); a clean text and its corrupted twin must tokenize to the same length.
    /// </summary>
    public static PromptPairs FromTexts(HookedTransformer model, IReadOnlyList<string> clean, IReadOnlyList<string> corrupted,
        IReadOnlyList<string> answers, IReadOnlyList<string> wrongAnswers, bool prependBos = true)
    {
        CheckCounts(clean, corrupted, answers.Count, wrongAnswers.Count);
        return FromTexts(model, clean, corrupted, [.. answers.Select(a => (long)model.ToSingleToken(a))],
            [.. wrongAnswers.Select(a => (long)model.ToSingleToken(a))], prependBos);
    }

    /// <summary>As the other overload, with the answers given as token ids.</summary>
    public static PromptPairs FromTexts(HookedTransformer model, IReadOnlyList<string> clean, IReadOnlyList<string> corrupted,
        IReadOnlyList<long> answers, IReadOnlyList<long> wrongAnswers, bool prependBos = true)
    {
        CheckCounts(clean, corrupted, answers.Count, wrongAnswers.Count);
        using var scope = NewDisposeScope();
        var (cleanTokens, cleanMask) = model.ToTokens(clean, prependBos, PaddingSide.Right);
        var (corruptedTokens, corruptedMask) = model.ToTokens(corrupted, prependBos, PaddingSide.Right);
        var lengths = cleanMask.sum(1);
        var corruptedLengths = corruptedMask.sum(1);
        for (int i = 0; i < clean.Count; i++)
            if (lengths[i].item<long>() != corruptedLengths[i].item<long>())
                throw new ArgumentException($"Pair {i}: the clean prompt \"{clean[i]}\" has {lengths[i].item<long>()} tokens but the corrupted \"{corrupted[i]}\" has " +
                    $"{corruptedLengths[i].item<long>()}; patching lines positions up, so choose a corruption that keeps the token count.", nameof(corrupted));
        bool padded = cleanMask.min().item<long>() == 0;
        return new PromptPairs(cleanTokens, corruptedTokens, tensor(answers.ToArray()), tensor(wrongAnswers.ToArray()), padded ? cleanMask : null);
    }

    static void CheckCounts(IReadOnlyList<string> clean, IReadOnlyList<string> corrupted, int answers, int wrongAnswers)
    {
        if (clean.Count != corrupted.Count || clean.Count != answers || clean.Count != wrongAnswers)
            throw new ArgumentException($"Give as many corrupted prompts, answers and wrong answers as clean prompts ({clean.Count}); got {corrupted.Count}, {answers}, {wrongAnswers}.", nameof(corrupted));
    }

    /// <summary>Consecutive slices of at most <paramref name="size"/> pairs (each a new object the caller disposes).</summary>
    public IEnumerable<PromptPairs> Batches(int size)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "A batch holds at least one pair.");
        for (long start = 0; start < Count; start += size)
        {
            long end = Math.Min(start + size, Count);
            using var scope = NewDisposeScope();
            yield return new PromptPairs(Clean.narrow(0, start, end - start), Corrupted.narrow(0, start, end - start),
                Answers.narrow(0, start, end - start), WrongAnswers.narrow(0, start, end - start), AttentionMask?.narrow(0, start, end - start));
        }
    }

    internal PromptPairs To(Device device) =>
        new(Clean.to(device), Corrupted.to(device), Answers.to(device), WrongAnswers.to(device), AttentionMask?.to(device));

    public void Dispose()
    {
        Clean.Dispose(); Corrupted.Dispose(); Answers.Dispose(); WrongAnswers.Dispose(); AttentionMask?.Dispose(); LastPositions.Dispose();
    }
}
