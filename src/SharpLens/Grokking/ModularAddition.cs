using SharpLens.Models;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Grokking;

/// <summary>
/// The data of the modular-addition task: every pair (a, b) as tokens <c>[a, b, =]</c> with answer (a + b) mod p,
/// in the order a·p + b, split once into a training and a test set by a seeded shuffle.
/// </summary>
public sealed class ModularAddition : IDisposable
{
    public ModularAdditionSettings Settings { get; }
    public int P => Settings.P;
    /// <summary>[p², 3] tokens of every pair, row a·p + b.</summary>
    public Tensor AllTokens { get; }
    /// <summary>[p²] answers (a + b) mod p.</summary>
    public Tensor AllAnswers { get; }
    /// <summary>Rows of <see cref="AllTokens"/> in the training set, and in the test set.</summary>
    public Tensor TrainIndices { get; }
    public Tensor TestIndices { get; }
    public Tensor TrainTokens { get; }
    public Tensor TrainAnswers { get; }
    public Tensor TestTokens { get; }
    public Tensor TestAnswers { get; }

    public ModularAddition(ModularAdditionSettings settings)
    {
        Settings = settings.Validated();
        int p = settings.P;
        using var scope = NewDisposeScope();
        var a = arange(p, dtype: ScalarType.Int64).repeat_interleave(p); // [p²]: a of row a·p + b
        var b = arange(p, dtype: ScalarType.Int64).repeat(p);            // [p²]
        var equals = full(p * p, settings.EqualsToken, dtype: ScalarType.Int64);
        AllTokens = stack([a, b, equals], 1).MoveToOuterDisposeScope(); // [p², 3]
        AllAnswers = ((a + b) % p).MoveToOuterDisposeScope();           // [p²]
        using var generator = new Generator((ulong)settings.DataSeed);
        var order = randperm(p * p, generator: generator);
        int trainCount = settings.TrainCount;
        TrainIndices = order[..trainCount].sort().Values.MoveToOuterDisposeScope();
        TestIndices = order[trainCount..].sort().Values.MoveToOuterDisposeScope();
        TrainTokens = AllTokens.index_select(0, TrainIndices).MoveToOuterDisposeScope(); // [train, 3]
        TrainAnswers = AllAnswers.index_select(0, TrainIndices).MoveToOuterDisposeScope();
        TestTokens = AllTokens.index_select(0, TestIndices).MoveToOuterDisposeScope();   // [test, 3]
        TestAnswers = AllAnswers.index_select(0, TestIndices).MoveToOuterDisposeScope();
    }

    /// <summary>The whole training set, every step: the paper trains full batch.</summary>
    public TrainingBatch FullBatch() => new(TrainTokens, Targets: TrainAnswers);

    /// <summary>Logits for the p answers, read at the <c>=</c> position: [batch, p]. The <c>=</c> token is never an answer.</summary>
    public static Tensor AnswerLogits(HookedTransformer model, Tensor tokens, int p) => model.Run(tokens)[.., -1, ..p]; // [batch, p]

    /// <summary>Mean cross-entropy of answer logits [batch, p] against answers [batch], in float64 so tiny losses stay exact.</summary>
    public static Tensor Loss(Tensor logits, Tensor answers)
    {
        var logProbs = logits.to(ScalarType.Float64).log_softmax(-1);
        return -logProbs.gather(-1, answers.unsqueeze(-1)).mean();
    }

    /// <summary>Share of rows whose largest logit is the answer.</summary>
    public static double Accuracy(Tensor logits, Tensor answers) => (logits.argmax(-1) == answers).to(ScalarType.Float64).mean().item<double>();

    /// <summary>The training loss: cross-entropy at the <c>=</c> position against the batch's targets.</summary>
    public Tensor TrainingLoss(HookedTransformer model, TrainingBatch batch) =>
        Loss(AnswerLogits(model, batch.Tokens, P), batch.Targets ?? throw new ArgumentException("The batch has no Targets: modular addition needs the answers.", nameof(batch)));

    public double TestLoss(HookedTransformer model)
    {
        using var scope = NewDisposeScope();
        return Loss(AnswerLogits(model, TestTokens, P), TestAnswers).item<double>();
    }

    public void Dispose()
    {
        foreach (var t in new[] { AllTokens, AllAnswers, TrainIndices, TestIndices, TrainTokens, TrainAnswers, TestTokens, TestAnswers }) t.Dispose();
    }
}
