using System.Text.Json.Serialization;

namespace SharpLens.Server.Explorer;

// The Explorer's wire format: every request and answer of /api/, snake_case, written by the source generator below
// (no reflection). The OpenAPI document (Assets/openapi.json) describes the same shapes.

/// <summary>A prompt as text (tokenized with the model's tokenizer; BOS first) or as token ids. Organisms without a
/// tokenizer read <c>prompt</c> as ids separated by spaces or commas.</summary>
public record PromptInput
{
    public string? Prompt { get; set; }
    public long[]? Tokens { get; set; }
}

public sealed record PromptRequest : PromptInput
{
    /// <summary>How many next-token predictions per position.</summary>
    public int TopK { get; set; } = 5;
}

public sealed record GenerateRequest : PromptInput
{
    public int MaxNewTokens { get; set; } = 20;
    public double Temperature { get; set; } = 1.0;
    public int? TopK { get; set; }
    public double? TopP { get; set; }
    public long Seed { get; set; }
}

public sealed record AttentionRequest : PromptInput
{
    public int Layer { get; set; }
}

/// <summary>Logit lens and direct logit attribution: the answer token (default: the model's own top prediction at the
/// last position) and optionally a wrong token, for a logit difference. Text for models with a tokenizer (exactly one
/// token), else a token id.</summary>
public sealed record LogitRequest : PromptInput
{
    public string? Answer { get; set; }
    public string? Wrong { get; set; }
    /// <summary>DLA only: split attention layers into heads.</summary>
    public bool PerHead { get; set; }
}

public sealed record PatchingRequest
{
    public string? Clean { get; set; }
    public string? Corrupted { get; set; }
    public string? Answer { get; set; }
    public string? Wrong { get; set; }
    /// <summary>resid_pre, resid_mid, resid_post, attn_out, mlp_out (layer × position) or z (layer × head).</summary>
    public string Component { get; set; } = "resid_pre";
    /// <summary>activation (one forward pass per cell batch) or attribution (the gradient approximation: two passes).</summary>
    public string Method { get; set; } = "activation";
    /// <summary>Patched copies per forward pass (default: as many as the memory budget allows). 1 shows progress cell by cell.</summary>
    public int? CellsPerPass { get; set; }
}

/// <summary>An attribution graph of the prompt (circuit-tracer's attribute + prune): its options, under circuit-tracer's names.</summary>
public sealed record GraphRequest : PromptInput
{
    /// <summary>At most this many feature nodes, visited in order of estimated influence (default: every active feature).</summary>
    public int? MaxFeatureNodes { get; set; }
    /// <summary>Source rows per backward pass (default 512); smaller batches report progress more often.</summary>
    public int? BatchSize { get; set; }
    public int MaxNLogits { get; set; } = 10;
    public double DesiredLogitProb { get; set; } = 0.95;
    /// <summary>Pruning: the share of total influence kept, for nodes and for edges.</summary>
    public double NodeThreshold { get; set; } = 0.8;
    public double EdgeThreshold { get; set; } = 0.98;
}

public sealed record FeaturesRequest : PromptInput
{
    public int Sae { get; set; }
    public int TopK { get; set; } = 5;
    /// <summary>Also return this feature's activation at every token ("test with custom text").</summary>
    public int? Feature { get; set; }
}

public sealed record FeaturePageRequest
{
    public int Sae { get; set; }
    public int Feature { get; set; }
}

public sealed record SteerRequest : PromptInput
{
    public int Layer { get; set; }
    /// <summary>Hook to add the vector at (default blocks.{layer}.hook_resid_pre).</summary>
    public string? Hook { get; set; }
    /// <summary>Steer along an SAE feature's decoder direction…</summary>
    public int? Sae { get; set; }
    public int? Feature { get; set; }
    /// <summary>…or along mean(positive) − mean(negative) at the hook (contrastive activation addition).</summary>
    public string? Positive { get; set; }
    public string? Negative { get; set; }
    public double Coefficient { get; set; } = 4;
    public int MaxNewTokens { get; set; } = 10;
    public double Temperature { get; set; }
    public long Seed { get; set; }
    /// <summary>all or last.</summary>
    public string Positions { get; set; } = "all";
}

public sealed record ErrorAnswer(string Error);

public sealed record SaeInfo(int Index, string Name, string Hook, int DSae, string Architecture);

public sealed record LimitsInfo(int MaxPromptChars, int MaxPromptTokens, long MaxBodyBytes, int MaxNewTokens, int MaxTopK);

public sealed record Examples(string Prompt, string Clean, string Corrupted, string Answer, string Wrong);

public sealed record ModelInfo(string Name, string Kind, bool AttnOnly, int NLayers, int NHeads, int DModel, int DVocab, int NCtx, bool HasTokenizer,
    IReadOnlyList<SaeInfo> Saes, bool HasTranscoders, string? GraphNote, string? Transcoders, LimitsInfo Limits, Examples Examples, string Corpus, string CorpusSource);

public sealed record StatusInfo(bool Busy, string? Running, int Waiting, long Completed, IReadOnlyList<JobInfo> Jobs);

public sealed record TokenProb(long Token, string Text, double Prob);

public sealed record PromptAnswer(long[] Tokens, IReadOnlyList<string> Strings, double?[] Loss, double? MeanLoss, IReadOnlyList<IReadOnlyList<TokenProb>> Top, string? Note);

public sealed record GenerateAnswer(long[] PromptTokens, long[] NewTokens, IReadOnlyList<string> NewStrings, string Text);

public sealed record AttentionAnswer(int Layer, IReadOnlyList<string> Strings, float[][][] Pattern);

public sealed record HeadScoresAnswer(int Layers, int Heads, double[][] PreviousToken, double[][] DuplicateToken, double[][] Induction, string Data);

public sealed record LensAnswer(IReadOnlyList<string> Rows, IReadOnlyList<string> Strings, int Position, long AnswerToken, string AnswerText,
    long? WrongToken, string? WrongText, IReadOnlyList<IReadOnlyList<TokenProb>> TopAtPosition, double[][] AnswerProb, int[] AnswerRank, double[]? LogitDiff);

public sealed record DlaAnswer(IReadOnlyList<string> Components, double[] Values, double Sum, double LogitDifference, long AnswerToken, string AnswerText,
    long? WrongToken, string? WrongText);

public sealed record JobInfo(string Id, string Kind, string State, int Done, int Total, string? Message, string? Error,
    long LiveTensorsBefore, long LiveTensorsAfter, double Seconds);

public sealed record PatchingAnswer(string Component, string Method, IReadOnlyList<string> Dims, float[][] Values,
    IReadOnlyList<string> RowLabels, IReadOnlyList<string> ColumnLabels, double CleanMetric, double CorruptedMetric, int ForwardPasses,
    IReadOnlyList<string> CleanStrings, IReadOnlyList<string> CorruptedStrings);

public sealed record JobAnswer(JobInfo Job, PatchingAnswer? Patching, GraphAnswer? Graph);

public sealed record GraphAnswer(int ActiveFeatures, int Features, int Nodes, int KeptNodes, int KeptLinks, double ReplacementScore, double CompletenessScore,
    string ViewerUrl, string GraphUrl);

public sealed record FeatureAct(int Feature, float Activation);

public sealed record FeaturesAnswer(int Sae, string Hook, IReadOnlyList<string> Strings, IReadOnlyList<IReadOnlyList<FeatureAct>> PerToken, float[]? FeatureActs);

public sealed record LogitEffectInfo(long Token, string Text, float Value);

public sealed record ContextInfo(IReadOnlyList<string> Tokens, float[] Values, int Center, float Activation);

public sealed record IntervalInfo(double Low, double High, long Count, double Contains, IReadOnlyList<ContextInfo> Samples);

/// <summary>A feature page; the names follow Neuronpedia's batch format where it has one (frac_nonzero,
/// freq_hist_data_bar_values / _heights: parallel, one entry per bin).</summary>
public sealed record FeaturePageAnswer(int Sae, int Feature, string Hook, double FracNonzero, float MaxActivation, double? MeanWhenFiring,
    double[] FreqHistDataBarValues, long[] FreqHistDataBarHeights, IReadOnlyList<LogitEffectInfo>? PosLogits, IReadOnlyList<LogitEffectInfo>? NegLogits,
    IReadOnlyList<ContextInfo> TopActivations, IReadOnlyList<IntervalInfo> Intervals, long TokensRead, string Corpus, string CorpusSource, string? LogitNote);

public sealed record SteerAnswer(string Hook, double Coefficient, double VectorNorm, string Source, IReadOnlyList<string> PromptStrings,
    IReadOnlyList<string> Unsteered, IReadOnlyList<string> Steered, string UnsteeredText, string SteeredText);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(PromptRequest))]
[JsonSerializable(typeof(GenerateRequest))]
[JsonSerializable(typeof(AttentionRequest))]
[JsonSerializable(typeof(LogitRequest))]
[JsonSerializable(typeof(PatchingRequest))]
[JsonSerializable(typeof(GraphRequest))]
[JsonSerializable(typeof(FeaturesRequest))]
[JsonSerializable(typeof(FeaturePageRequest))]
[JsonSerializable(typeof(SteerRequest))]
[JsonSerializable(typeof(PromptInput))]
[JsonSerializable(typeof(ErrorAnswer))]
[JsonSerializable(typeof(ModelInfo))]
[JsonSerializable(typeof(StatusInfo))]
[JsonSerializable(typeof(PromptAnswer))]
[JsonSerializable(typeof(GenerateAnswer))]
[JsonSerializable(typeof(AttentionAnswer))]
[JsonSerializable(typeof(HeadScoresAnswer))]
[JsonSerializable(typeof(LensAnswer))]
[JsonSerializable(typeof(DlaAnswer))]
[JsonSerializable(typeof(JobInfo))]
[JsonSerializable(typeof(JobAnswer))]
[JsonSerializable(typeof(FeaturesAnswer))]
[JsonSerializable(typeof(FeaturePageAnswer))]
[JsonSerializable(typeof(SteerAnswer))]
public sealed partial class ExplorerJsonContext : JsonSerializerContext;
