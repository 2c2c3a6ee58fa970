using System.Text.Json.Serialization;

namespace SharpLens.Benchmarks;

/// <summary>Source-generated JSON for the benchmark results (snake_case; NaN and infinities written as strings).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(BenchmarkResult))]
[JsonSerializable(typeof(GrokkingTrainingResult))]
[JsonSerializable(typeof(SaeTrainingResult))]
[JsonSerializable(typeof(LanguageModelTrainingResult))]
[JsonSerializable(typeof(List<GemmShapeResult>))]
[JsonSerializable(typeof(Bfloat16Result))]
public sealed partial class BenchmarkJsonContext : JsonSerializerContext;

/// <summary>The patching benchmark's JSON keeps the record's own property names, as it always has.</summary>
[JsonSerializable(typeof(PatchingTimings))]
public sealed partial class PatchingJsonContext : JsonSerializerContext;
