using SharpLens.IO;
using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// The check every loader makes between reading config.json and allocating a model: the config must describe a model
/// that the stored weights can fill (a config that claims 2³¹ layers over a 100 KB checkpoint is refused at once,
/// not enumerated or allocated), and that fits in the memory this machine has (<see cref="SizeCheck.MemoryLimitBytes"/>).
/// </summary>
public static class ModelSizeCheck
{
    /// <summary>
    /// A lower bound on the parameters of the model a config describes: one embedding, and per layer the query and
    /// output projections plus (unless attention-only) one MLP's input and output, and the learned position table
    /// (n_ctx rows of d_model) where there is one. Every architecture stores at least these.
    /// </summary>
    public static double MinimumParameters(ModelConfig c) =>
        (double)c.DVocab * c.DModel + (double)c.NLayers * (2.0 * c.DModel * c.NHeads * c.DHead + (c.AttnOnly ? 0 : 2.0 * c.DModel * c.DMlp))
        + (c.PositionalEmbeddingType == PositionalEmbedding.Learned ? (double)c.NCtx * c.DModel : 0);

    public static void AgainstWeights(ModelConfig config, long storedElements, string configPath, string weightsSource, HuggingFaceConfigJson? json = null)
    {
        string fields = json?.DimensionFields() is { Length: > 0 } f ? $" (config.json: {f})" : "";
        double minimum = MinimumParameters(config);
        if (minimum > storedElements)
            throw new CheckpointException(configPath, null,
                $"config.json describes a model of at least {minimum:N0} parameters (n_layers {config.NLayers}, d_model {config.DModel}, n_heads {config.NHeads}, " +
                $"d_head {config.DHead}, d_mlp {config.DMlp}, d_vocab {config.DVocab}, n_ctx {config.NCtx}){fields}, but {weightsSource} holds only {storedElements:N0} values: " +
                "config.json does not belong to these weights (or one of its dimensions is corrupt).");
        // The model holds its weights as float32 (or the options' dtype, never more than 4 bytes a value).
        double bytes = Math.Max(minimum, storedElements) * 4.0;
        SizeCheck.InMemory(bytes >= long.MaxValue ? long.MaxValue : (long)bytes, configPath, $"the model{fields}");
    }
}
