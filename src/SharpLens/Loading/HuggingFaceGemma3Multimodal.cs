using System.Text.Json.Nodes;
using SharpLens.Models;

namespace SharpLens.Loading;

/// <summary>
/// Gemma 3 as gemma-3-4b and larger ship it (model_type "gemma3", Gemma3ForConditionalGeneration): a text model with a
/// SigLIP vision tower beside it. SharpLens loads the text model, which is exactly <see cref="HuggingFaceGemma3"/>:
/// <code>
/// config.json text_config                        → read as a gemma3_text config; a field it leaves out takes
///                                                  Gemma3TextConfig's default (as transformers fills them in)
/// language_model.model.X  (files on the hub)     → model.X of gemma3_text
/// model.language_model.X  (saved by transformers ≥ 4.52) → model.X
/// language_model.lm_head.weight / lm_head.weight → lm_head.weight (absent when tied, the default)
/// vision_tower.*, multi_modal_projector.*, vision_config, mm_tokens_per_image, boi/eoi/image_token_index → not loaded
/// </code>
/// Text in, logits out: images cannot be given, so the vision tower is left on disk (said once per checkpoint).
/// </summary>
public static class HuggingFaceGemma3Multimodal
{
    public static readonly HuggingFaceFamily Family = new("gemma3", ReadConfig,
        (cfg, json, tensors, into) => HuggingFaceGemma3.Family.WriteWeights(cfg, TextConfig(json), tensors, into))
    {
        SelectTensors = LanguageModel,
    };

    /// <summary>transformers' Gemma3TextConfig defaults: what text_config means by a field it leaves out.</summary>
    static readonly (string Key, JsonNode? Value)[] TextDefaults =
    [
        ("vocab_size", 262208), ("hidden_size", 2304), ("intermediate_size", 9216), ("num_hidden_layers", 26),
        ("num_attention_heads", 8), ("num_key_value_heads", 4), ("head_dim", 256), ("hidden_activation", "gelu_pytorch_tanh"),
        ("max_position_embeddings", 131072), ("rms_norm_eps", 1e-6), ("pad_token_id", 0), ("eos_token_id", 1), ("bos_token_id", 2),
        ("tie_word_embeddings", true), ("rope_theta", 1_000_000.0), ("attention_bias", false), ("query_pre_attn_scalar", 256),
        ("sliding_window", 4096), ("rope_local_base_freq", 10_000.0), ("sliding_window_pattern", 6),
    ];

    /// <summary>The text model's config: config.json's text_config over Gemma3TextConfig's defaults, named "config.json (text_config)" in messages.</summary>
    public static HuggingFaceConfigJson TextConfig(HuggingFaceConfigJson json)
    {
        var given = json.Object("text_config")
            ?? throw json.Problem("model_type \"gemma3\" (Gemma 3 with a vision tower) needs text_config, the text model's settings; is this config.json complete?");
        var text = JsonNode.Parse(json.Raw("text_config"))!.AsObject();
        if (given.ModelType is { } type && type != "gemma3_text")
            throw json.Problem($"text_config.model_type is \"{type}\"; a Gemma 3 checkpoint's text model is \"gemma3_text\".");
        text["model_type"] = "gemma3_text";
        foreach (var (key, value) in TextDefaults)
            if (!text.ContainsKey(key)) text[key] = value?.DeepClone();
        return new HuggingFaceConfigJson(text.ToJsonString(), $"{json.Source} (text_config)");
    }

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        // The vision side: read (so it is not refused as ignored) and not loaded.
        foreach (var key in new[] { "vision_config", "mm_tokens_per_image", "boi_token_index", "eoi_token_index", "image_token_index", "image_token_id", "boi_token_id", "eoi_token_id" })
            json.IsSet(key);
        var text = TextConfig(json);
        bool tied = HuggingFaceGemma.Tied(text);
        if (json.Get<bool?>("tie_word_embeddings") is bool top && top != tied)
            throw json.Problem($"tie_word_embeddings is {(top ? "true" : "false")} but text_config's is {(tied ? "true" : "false")}; transformers follows text_config. Make them agree.");
        var cfg = text.Checked(() => HuggingFaceGemma3.ReadConfig(text));
        HuggingFaceConfigFields.CheckNothingIgnored(text, "gemma3_text");
        return cfg;
    }

    static readonly HashSet<string> Told = new(StringComparer.Ordinal);

    /// <summary>The text model's tensors under gemma3_text's names; the vision tower and projector are left out.</summary>
    static HuggingFaceTensorSource LanguageModel(HuggingFaceConfigJson json, HuggingFaceTensorSource tensors)
    {
        bool hub = tensors.Names.Any(n => n.StartsWith("language_model.", StringComparison.Ordinal)); // else transformers ≥ 4.52's save layout
        static bool Vision(string n) => n.StartsWith("vision_tower.", StringComparison.Ordinal) || n.StartsWith("multi_modal_projector.", StringComparison.Ordinal)
            || n.StartsWith("model.vision_tower.", StringComparison.Ordinal) || n.StartsWith("model.multi_modal_projector.", StringComparison.Ordinal);
        string? ToText(string stored) =>
            Vision(stored) ? null
            : hub ? (stored.StartsWith("language_model.", StringComparison.Ordinal) ? stored["language_model.".Length..] : stored)
            : stored.StartsWith("model.language_model.", StringComparison.Ordinal) ? "model." + stored["model.language_model.".Length..] : stored;
        string ToStored(string text) =>
            hub ? "language_model." + text
            : text.StartsWith("model.", StringComparison.Ordinal) ? "model.language_model." + text["model.".Length..] : text;
        int vision = tensors.Names.Count(Vision);
        lock (Told)
            if (vision > 0 && Told.Add(tensors.Source))
                Console.Error.WriteLine($"{json.Source}: Gemma 3 with a vision tower: loading its text model; the {vision} tensors of the vision tower and projector are not loaded.");
        return tensors.Renamed(ToText, ToStored);
    }
}
