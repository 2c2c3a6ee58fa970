using System.Text.Json.Serialization;

namespace SharpLens.Cli;

/// <summary>Source-generated JSON for the few plain values the commands print (token strings as JSON literals).</summary>
[JsonSerializable(typeof(string))]
sealed partial class CliJsonContext : JsonSerializerContext;
