using SharpLens.Techniques.MaxActivating;

namespace SharpLens.Saes.Dashboards;

/// <summary>One token of a shown context and the feature's activation on it.</summary>
public sealed record TokenActivation(string Token, float Activation);

/// <summary>
/// A token position where the feature was read: context row and position in the token stream, the activation there,
/// and a window of tokens around it (<see cref="Center"/> indexes the position itself in <see cref="Window"/>).
/// </summary>
public sealed record ContextExample(int Context, int Position, float Activation, IReadOnlyList<TokenActivation> Window, int Center);

/// <summary>Activations in (Low, High]: how many positions fell there and a random sample of them, strongest first.</summary>
public sealed record ActivationInterval(double Low, double High, long Count, IReadOnlyList<ContextExample> Samples);

/// <summary>A token and how much the feature's decoder direction raises (or lowers) its logit: (W_dec[f] @ W_U)[token].</summary>
public sealed record LogitEffect(int TokenId, string Token, float Value);

/// <summary>Everything a dashboard shows about one feature.</summary>
/// <param name="Density">Fraction of the tokens read where the feature is above zero.</param>
/// <param name="MeanWhenFiring">Mean activation over the tokens where it fires; NaN for a feature that never fires.</param>
/// <param name="TopLogits">Null when the dashboard has no decoder or no unembedding to combine.</param>
/// <param name="Histogram">Of the activations above zero; null for a feature that never fires.</param>
public sealed record FeatureData(int Feature, double Density, float MaxActivation, double MeanWhenFiring,
    IReadOnlyList<ContextExample> TopExamples, IReadOnlyList<ActivationInterval> Intervals,
    IReadOnlyList<LogitEffect>? TopLogits, IReadOnlyList<LogitEffect>? BottomLogits, ActivationHistogram? Histogram);
