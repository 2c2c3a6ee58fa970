using System.Text.Json.Serialization;

namespace SharpLens.Tracing;

/// <summary>
/// A trace as data: what to read, write and save at which hook, in which invoke and generation step. The C# tracing
/// API builds one; <c>model.Run(plan)</c> runs it here, a SharpLens server runs it remotely. A server runs plans,
/// never code: every operation is one of a fixed, validated set (see <see cref="PlanValidator"/>).
/// </summary>
/// <remarks>
/// The JSON form (version 1, <c>"sharplens_plan": 1</c>):
/// <code>
/// {
///   "sharplens_plan": 1,
///   "model": "induction",                                   // which served model (servers with several)
///   "invokes": [ { "tokens": [[0, 5, 9]] }, { "text": "The cat" } ],   // batched into one forward, in this order
///   "generate": { "max_new_tokens": 3, "temperature": 0 },   // optional: greedy or sampled generation
///   "constants": { "v": { "shape": [32], "data": [0.1, ...] } },       // float32 tensors the expressions use
///   "ops": [
///     { "op": "read",  "id": "h", "hook": "blocks.0.hook_resid_post", "invoke": 0, "index": "[:, -1]" },
///     { "op": "write", "hook": "blocks.0.hook_resid_post", "invoke": 1, "index": "[:, -1]", "value": { "ref": "h" } },
///     { "op": "save",  "name": "logits", "value": { "op": "index", "args": [{ "ref": "out" }], "index": "[:, -1]" } },
///     { "op": "stop",  "hook": "blocks.1.hook_resid_post" },
///     { "op": "backward", "value": { ... scalar ... } }
///   ]
/// }
/// </code>
/// <c>invoke</c> omitted means the whole batch; <c>index</c> is NumPy basic indexing (ints, slices, <c>...</c>) applied
/// within the invoke's rows; <c>steps</c> ("all", "2", "1:3", "0,2") says at which generation steps an op runs (default
/// step 0, the prompt's forward). The hook "output" is the model's output (logits, or an encoder's hidden state).
/// Within one invoke, ops must follow the order in which the forward pass reaches their hooks.
/// </remarks>
public sealed record TracePlan
{
    [JsonPropertyName("sharplens_plan")] public int Version { get; init; } = 1;
    [JsonPropertyName("model")] public string? Model { get; init; }
    [JsonPropertyName("invokes")] public List<PlanInvoke> Invokes { get; init; } = [];
    [JsonPropertyName("generate")] public PlanGeneration? Generate { get; init; }
    [JsonPropertyName("constants")] public Dictionary<string, PlanTensor>? Constants { get; init; }
    [JsonPropertyName("ops")] public List<PlanOp> Ops { get; init; } = [];

    /// <summary>The hook name that stands for the model's output (logits; an encoder's last hidden state).</summary>
    public const string OutputHook = "output";
}

/// <summary>One prompt (or batch of prompts) of a trace: token ids [batch, pos], or text the served model tokenizes.</summary>
public sealed record PlanInvoke
{
    [JsonPropertyName("tokens")] public List<List<long>>? Tokens { get; init; }
    [JsonPropertyName("text")] public string? Text { get; init; }
}

/// <summary>Generation settings: tokens to add, one forward per step; temperature 0 is greedy.</summary>
public sealed record PlanGeneration
{
    [JsonPropertyName("max_new_tokens")] public int MaxNewTokens { get; init; }
    [JsonPropertyName("temperature")] public double Temperature { get; init; }
    [JsonPropertyName("seed")] public long Seed { get; init; }
}

/// <summary>A float32 tensor given inline: its shape and its elements in C order.</summary>
public sealed record PlanTensor
{
    [JsonPropertyName("shape")] public List<long> Shape { get; init; } = [];
    [JsonPropertyName("data")] public List<float> Data { get; init; } = [];
}

/// <summary>One operation: read, write, save, stop or backward (see <see cref="TracePlan"/>).</summary>
public sealed record PlanOp
{
    [JsonPropertyName("op")] public string Op { get; init; } = "";
    /// <summary>read: the name later expressions use for the value read.</summary>
    [JsonPropertyName("id")] public string? Id { get; init; }
    [JsonPropertyName("hook")] public string? Hook { get; init; }
    /// <summary>Which invoke's rows; null for the whole batch.</summary>
    [JsonPropertyName("invoke")] public int? Invoke { get; init; }
    [JsonPropertyName("index")] public string? Index { get; init; }
    /// <summary>Generation steps: "all", "2", "1:3", "0,2"; null for step 0.</summary>
    [JsonPropertyName("steps")] public string? Steps { get; init; }
    /// <summary>read: the gradient at the hook instead of the activation (needs a backward op).</summary>
    [JsonPropertyName("grad")] public bool Grad { get; init; }
    /// <summary>save: the name of the result.</summary>
    [JsonPropertyName("name")] public string? Name { get; init; }
    /// <summary>write, save, backward: the value.</summary>
    [JsonPropertyName("value")] public PlanExpr? Value { get; init; }

    public const string Read = "read", Write = "write", Save = "save", Stop = "stop", Backward = "backward";
    public static readonly IReadOnlyList<string> Kinds = [Read, Write, Save, Stop, Backward];
}

/// <summary>
/// An expression over earlier values: exactly one of <c>ref</c> (a read's id), <c>scalar</c>, <c>const</c> (a
/// constant's name) or <c>op</c> with <c>args</c> (see <see cref="PlanOps"/> for the operations and their fields).
/// </summary>
public sealed record PlanExpr
{
    [JsonPropertyName("ref")] public string? Ref { get; init; }
    [JsonPropertyName("scalar")] public double? Scalar { get; init; }
    [JsonPropertyName("const")] public string? Const { get; init; }
    [JsonPropertyName("op")] public string? Op { get; init; }
    [JsonPropertyName("args")] public List<PlanExpr>? Args { get; init; }
    /// <summary>Dimensions for reductions and softmax (negative counts from the end).</summary>
    [JsonPropertyName("dims")] public List<long>? Dims { get; init; }
    [JsonPropertyName("keepdim")] public bool KeepDim { get; init; }
    /// <summary>The "index" op's NumPy-style index, e.g. "[:, -1]".</summary>
    [JsonPropertyName("index")] public string? Index { get; init; }

    public static PlanExpr OfRef(string id) => new() { Ref = id };
    public static PlanExpr OfScalar(double value) => new() { Scalar = value };
    public static PlanExpr OfConst(string name) => new() { Const = name };
    public static PlanExpr Call(string op, params PlanExpr[] args) => new() { Op = op, Args = [.. args] };
}

/// <summary>System.Text.Json source generation for plans (no reflection: trim- and AOT-safe).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault,
    AllowTrailingCommas = true, ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip, MaxDepth = PlanLimits.JsonMaxDepth,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(TracePlan))]
public sealed partial class TracePlanJsonContext : JsonSerializerContext;
