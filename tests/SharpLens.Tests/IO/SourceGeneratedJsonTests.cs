using System.Text.Json;
using System.Text.Json.Serialization;
using SharpLens.Grokking;
using SharpLens.IO;
using SharpLens.Models;
using SharpLens.Organisms;

namespace SharpLens.Tests.IO;

/// <summary>
/// SharpLens's JSON goes through source-generated contexts (file-based apps and AOT switch reflection off); the files
/// it writes must stay byte-for-byte what the reflection-based options wrote, or cached organisms and saved configs
/// would no longer match.
/// </summary>
public class SourceGeneratedJsonTests
{
    static readonly JsonSerializerOptions Reflection = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver(),
    };

    [Fact]
    public void Settings_and_configs_serialize_exactly_as_with_reflection()
    {
        var config = new InductionSettings().ModelConfig();
        Assert.Equal(JsonSerializer.Serialize(config, Reflection), config.ToJson());
        Assert.Contains("\"normalization_type\": \"none\"", config.ToJson());
        Assert.Equal(JsonSerializer.Serialize(new InductionSettings(), Reflection), new InductionSettings().ToJson());
        Assert.Equal(JsonSerializer.Serialize(new LatentSettings(), Reflection), new LatentSettings().ToJson());
        Assert.Equal(JsonSerializer.Serialize(new ModularAdditionSettings(), Reflection), new ModularAdditionSettings().ToJson());
    }

    [Fact]
    public void Round_trips_through_the_context()
    {
        var config = new InductionSettings().ModelConfig();
        Assert.Equal(config.ToJson(), ModelConfig.FromJson(config.ToJson()).ToJson());
        Assert.Equal(new LatentSettings(), LatentSettings.FromJson(new LatentSettings().ToJson()));
    }

    [Fact]
    public void An_unregistered_type_is_named_in_the_error()
    {
        var e = Assert.Throws<SharpLensInternalException>(() => SharpLensJson.Serialize(new Uri("http://x")));
        Assert.Contains("System.Uri", e.Message);
        Assert.Contains("SharpLensJsonContext", e.Message);
    }
}
