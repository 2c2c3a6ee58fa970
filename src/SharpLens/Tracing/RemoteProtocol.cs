using System.Text.Json.Serialization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// The SharpLens server's wire format, shared by server and client.
/// <code>
/// GET  /v1/models                       → { "models": [ TraceLayout, ... ] }
/// POST /v1/plans   Authorization: Bearer KEY,  body: a TracePlan
///      refused before it runs: 401 (key), 429 (quota), 400 (invalid plan), 404 (model) with { "error": "..." }
///      accepted: 200, then one JSON object per line (NDJSON), streamed as the run goes:
///        { "event": "queued", "position": 2 }
///        { "event": "running" }
///        { "event": "tensor", "name": "logits", "step": 0, "shape": [1, 5, 64], "dtype": "float32", "data": "base64, little-endian" }
///        { "event": "done", "stopped": false, "seconds": 0.012 }
///      or  { "event": "error", "status": 408, "message": "..." }
/// </code>
/// </summary>
public sealed record RunEvent
{
    [JsonPropertyName("event")] public string Event { get; init; } = "";
    [JsonPropertyName("position")] public int? Position { get; init; }
    [JsonPropertyName("name")] public string? Name { get; init; }
    [JsonPropertyName("step")] public int? Step { get; init; }
    [JsonPropertyName("shape")] public List<long>? Shape { get; init; }
    [JsonPropertyName("dtype")] public string? DType { get; init; }
    [JsonPropertyName("data")] public string? Data { get; init; }
    [JsonPropertyName("stopped")] public bool? Stopped { get; init; }
    [JsonPropertyName("seconds")] public double? Seconds { get; init; }
    [JsonPropertyName("status")] public int? Status { get; init; }
    [JsonPropertyName("message")] public string? Message { get; init; }

    /// <summary>A tensor as an event: float32, int64 or bool, little-endian bytes in base64.</summary>
    public static RunEvent OfTensor(string name, int step, Tensor value)
    {
        var t = value.dtype switch
        {
            ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte => value.to(ScalarType.Int64),
            ScalarType.Bool => value,
            _ => value.to(ScalarType.Float32),
        };
        using var c = t.cpu().contiguous();
        byte[] bytes = c.dtype switch
        {
            ScalarType.Int64 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.data<long>().ToArray().AsSpan()).ToArray(),
            ScalarType.Bool => [.. c.data<bool>().Select(b => b ? (byte)1 : (byte)0)],
            _ => System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.data<float>().ToArray().AsSpan()).ToArray(),
        };
        string dtype = c.dtype switch { ScalarType.Int64 => "int64", ScalarType.Bool => "bool", _ => "float32" };
        return new RunEvent { Event = "tensor", Name = name, Step = step, Shape = [.. value.shape], DType = dtype, Data = Convert.ToBase64String(bytes) };
    }

    internal Tensor ToTensor()
    {
        var bytes = Convert.FromBase64String(Data ?? "");
        long[] shape = [.. Shape ?? []];
        return DType switch
        {
            "int64" => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(bytes).ToArray(), shape),
            "bool" => tensor(bytes.Select(b => b != 0).ToArray(), shape),
            _ => tensor(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray(), shape),
        };
    }
}

public sealed record ModelList
{
    [JsonPropertyName("models")] public List<TraceLayout> Models { get; init; } = [];
}

public sealed record ErrorBody
{
    [JsonPropertyName("error")] public string Error { get; init; } = "";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunEvent))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ErrorBody))]
public sealed partial class RemoteJsonContext : JsonSerializerContext;
