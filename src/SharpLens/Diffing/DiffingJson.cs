using System.Text.Json.Serialization;

namespace SharpLens.Diffing;

/// <summary>One latent in analysis.json.</summary>
public sealed record LatentRecord(int Latent, string Kind, double BaseNorm, double FinetunedNorm, double RelativeNorm, double NormDifference,
    double DecoderCosine, long FiringCount, double? BetaRatioError = null, double? BetaRatioReconstruction = null,
    double? BetaBaseError = null, double? BetaFinetunedError = null, double? BetaBaseReconstruction = null, double? BetaFinetunedReconstruction = null);

/// <summary>analysis.json of <c>sharplens diff crosscoder</c>.</summary>
public sealed record AnalysisRecord(string Convention, IReadOnlyList<string> Models, string Hook, string Architecture, int DictSize, int? K,
    double? Threshold, long HeldOutTokens, IReadOnlyList<double> ExplainedVariance, double L0, IReadOnlyDictionary<string, int> Counts,
    IReadOnlyList<int> RelativeNormHistogram, IReadOnlyList<int> MostFinetuneOnly, IReadOnlyList<LatentRecord> Latents,
    TrainingRecordJson? Training);

/// <summary>The training part of analysis.json: tokens, speed, the GEMM ceiling measured in the same run, memory.</summary>
public sealed record TrainingRecordJson(int Steps, int BatchSize, long Tokens, double Seconds, double TokensPerSecond, double? GemmCeilingTokensPerSecond,
    double? FractionOfCeiling, long BufferRows, long BufferBytes, long PeakBufferedRows, double FinalLoss, double FinalL0);

/// <summary>One position's readout in adl.json.</summary>
public sealed record AdlPositionRecord(int Position, double Norm, IReadOnlyList<ReadoutToken> LogitLens, IReadOnlyList<PatchscopeReadout>? Patchscope);

/// <summary>adl.json of <c>sharplens diff activations</c>.</summary>
public sealed record AdlRecord(IReadOnlyList<string> Models, string Hook, long Samples, int Positions, double FinetunedActivationNorm,
    IReadOnlyList<AdlPositionRecord> Readouts, IReadOnlyList<SteeringRecord>? Steering);

/// <summary>A steering sample: the base steered with the mean difference at one strength, and what it then generates or predicts.</summary>
public sealed record SteeringRecord(int Position, double Strength, string? Prompt, string? Unsteered, string? Steered, IReadOnlyList<ReadoutToken>? SteeredNext);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(AnalysisRecord))]
[JsonSerializable(typeof(AdlRecord))]
[JsonSerializable(typeof(WeightDiff))]
public sealed partial class DiffingJson : JsonSerializerContext;
