using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using SharpLens.Grokking;
using SharpLens.Models;
using SharpLens.Organisms;
using SharpLens.Reports;
using SharpLens.Training;

namespace SharpLens.IO;

/// <summary>
/// The JSON SharpLens writes and reads itself (model configs, organism and grokking settings, summaries, training
/// state): snake_case names (TransformerLens's field names), enums as snake_case strings, indented. All of it goes
/// through the source-generated <see cref="SharpLensJsonContext"/>, so it works where reflection-based serialization
/// is switched off — file-based apps (<c>dotnet run app.cs</c>), trimmed and native-AOT builds.
/// </summary>
public static class SharpLensJson
{
    /// <summary>The options: snake_case, indented, snake_case enum strings, metadata from <see cref="SharpLensJsonContext"/> only.</summary>
    public static JsonSerializerOptions Options { get; } = CreateOptions();

    static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
            Converters =
            {
                new JsonStringEnumConverter<Normalization>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<PositionalEmbedding>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<Activation>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<LearningRateSchedule>(JsonNamingPolicy.SnakeCaseLower),
            },
            TypeInfoResolver = SharpLensJsonContext.Default,
        };
        options.MakeReadOnly();
        return options;
    }

    /// <summary>The metadata for <typeparamref name="T"/>; a type the context does not know is a programming error named here.</summary>
    public static JsonTypeInfo<T> Info<T>() =>
        Options.TryGetTypeInfo(typeof(T), out var info) && info is JsonTypeInfo<T> typed ? typed
            : throw new SharpLensInternalException($"{typeof(T).FullName} is not registered in SharpLensJsonContext; add [JsonSerializable(typeof({typeof(T).Name}))] there.");

    public static string Serialize<T>(T value) => JsonSerializer.Serialize(value, Info<T>());

    public static T? Deserialize<T>(string json) => JsonSerializer.Deserialize(json, Info<T>());
}

/// <summary>Source-generated metadata for every type SharpLens serializes with <see cref="SharpLensJson.Options"/>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(ModelConfig))]
[JsonSerializable(typeof(InductionSettings))]
[JsonSerializable(typeof(LatentSettings))]
[JsonSerializable(typeof(TwoHopSettings))]
[JsonSerializable(typeof(ModularAdditionSettings))]
[JsonSerializable(typeof(TourSummary))]
[JsonSerializable(typeof(GrokkingSummary))]
[JsonSerializable(typeof(OrganismCache.SavedTraining))]
[JsonSerializable(typeof(TrainerState))]
[JsonSerializable(typeof(CheckpointManifestFile))]
internal sealed partial class SharpLensJsonContext : JsonSerializerContext;

/// <summary>Plain JSON values with no naming policy: token strings, vocabularies.</summary>
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, int>))]
[JsonSerializable(typeof(string[]))]
internal sealed partial class PlainJsonContext : JsonSerializerContext;
