using System.Text.Json;

namespace SharpLens.Tracing;

/// <summary>Reading and writing plans as JSON (source-generated; unknown fields and over-deep nesting are refused).</summary>
public static class TracePlanJson
{
    /// <summary>Parses a plan; <paramref name="source"/> (a file name, "request body") names it in errors.</summary>
    public static TracePlan Parse(string json, string source = "plan")
    {
        try
        {
            return JsonSerializer.Deserialize(json, TracePlanJsonContext.Default.TracePlan)
                   ?? throw new PlanValidationException($"{source}: the JSON is null; a plan is an object with \"invokes\" and \"ops\".");
        }
        catch (JsonException e)
        {
            throw new PlanValidationException($"{source}: not a valid plan ({e.Path ?? "$"}): {e.Message.Split(" Path:")[0]} See the plan schema in the README (Tracing).");
        }
    }

    /// <summary>Reads a plan file (at most 256 MB).</summary>
    public static TracePlan Load(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new PlanValidationException($"Plan file '{path}' does not exist.");
        if (info.Length > 256L << 20) throw new PlanValidationException($"Plan file '{path}' is {info.Length >> 20} MB; plans are limited to 256 MB.");
        return Parse(File.ReadAllText(path), path);
    }

    public static string ToJson(TracePlan plan, bool indented = false) =>
        indented
            ? JsonSerializer.Serialize(plan, new TracePlanJsonContext(new JsonSerializerOptions(TracePlanJsonContext.Default.Options) { WriteIndented = true }).TracePlan)
            : JsonSerializer.Serialize(plan, TracePlanJsonContext.Default.TracePlan);
}
