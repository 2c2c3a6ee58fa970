using System.Text.Json.Serialization;

namespace SharpLens.Reports;

/// <summary>
/// What the graph viewer shows when a feature node is clicked: circuit-tracer's feature-detail model (the same fields
/// Neuronpedia's feature-details schema has), so one feature's data can move between the three as it is.
/// </summary>
/// <param name="TranscoderId">Which transcoder set (and layer) the feature belongs to, e.g. "brown-lm-plt/3".</param>
/// <param name="Index">The feature's index within its layer's transcoder.</param>
/// <param name="ExamplesQuantiles">Top activating contexts, then contexts from lower activation quantiles.</param>
/// <param name="TopLogits">Tokens whose logits the feature's decoder direction raises most (direct effect).</param>
/// <param name="BottomLogits">Tokens whose logits it lowers most.</param>
/// <param name="QuantileValues">Activation values at the quantile edges.</param>
/// <param name="Histogram">Counts of non-zero activations over evenly spaced bins from ActMin to ActMax.</param>
/// <param name="ActivationFrequency">Fraction of corpus tokens on which the feature is active.</param>
public sealed record GraphFeatureDetails(
    [property: JsonPropertyName("transcoder_id")] string TranscoderId,
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("examples_quantiles")] IReadOnlyList<GraphFeatureQuantile> ExamplesQuantiles,
    [property: JsonPropertyName("top_logits")] IReadOnlyList<string> TopLogits,
    [property: JsonPropertyName("bottom_logits")] IReadOnlyList<string> BottomLogits,
    [property: JsonPropertyName("act_min")] float ActMin,
    [property: JsonPropertyName("act_max")] float ActMax,
    [property: JsonPropertyName("quantile_values")] IReadOnlyList<float> QuantileValues,
    [property: JsonPropertyName("histogram")] IReadOnlyList<float> Histogram,
    [property: JsonPropertyName("activation_frequency")] float ActivationFrequency);

/// <summary>One group of example contexts ("Top activations", or an activation interval).</summary>
public sealed record GraphFeatureQuantile(
    [property: JsonPropertyName("quantile_name")] string QuantileName,
    [property: JsonPropertyName("examples")] IReadOnlyList<GraphFeatureExample> Examples);

/// <summary>One context: its tokens and the feature's activation on each.</summary>
public sealed record GraphFeatureExample(
    [property: JsonPropertyName("tokens_acts_list")] IReadOnlyList<float> TokensActsList,
    [property: JsonPropertyName("train_token_ind")] int TrainTokenInd,
    [property: JsonPropertyName("is_repeated_datapoint")] bool IsRepeatedDatapoint,
    [property: JsonPropertyName("tokens")] IReadOnlyList<string> Tokens);

[JsonSourceGenerationOptions(WriteIndented = false)]
[JsonSerializable(typeof(Dictionary<string, GraphFeatureDetails>))]
internal sealed partial class GraphFeatureDetailsJson : JsonSerializerContext;
