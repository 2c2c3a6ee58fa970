using System.Text.RegularExpressions;

namespace SharpLens.Loading;

/// <summary>
/// Refuses a config.json field that no family reader looked at and that looks as if it changes the computation (its
/// name speaks of rotary embeddings, norms, scales, caps, windows, biases, activations, experts, heads, attention ...).
/// Loading such a file anyway would give logits that disagree with Hugging Face's without a word; naming the field
/// lets the user check it. Fields that only matter for training or bookkeeping (dropouts, initializer_range,
/// router_aux_loss_coef, token ids, transformers_version, ...) and fields whose value is null pass.
/// </summary>
public static partial class HuggingFaceConfigFields
{
    static readonly HashSet<string> Harmless = new(StringComparer.Ordinal)
    {
        "architectures", "model_type", "torch_dtype", "dtype", "transformers_version", "_name_or_path", "name_or_path", "auto_map",
        "bos_token_id", "eos_token_id", "pad_token_id", "sep_token_id", "decoder_start_token_id", "initializer_range", "use_cache",
        "attention_dropout", "hidden_dropout", "embd_pdrop", "resid_pdrop", "attn_pdrop", "classifier_dropout", "hidden_dropout_prob",
        "attention_probs_dropout_prob", "torchscript", "return_dict", "output_hidden_states", "output_attentions", "is_decoder",
        "is_encoder_decoder", "add_cross_attention", "tokenizer_class", "task_specific_params", "problem_type", "id2label", "label2id",
        "pretraining_tp", "router_aux_loss_coef", "output_router_logits", "router_jitter_noise", "cache_implementation",
        "attn_implementation", "_attn_implementation", "_attn_implementation_autoset", "use_flash_attention", "keys_to_ignore_at_inference",
        "max_length", "min_length", "temperature", "top_p", "top_k", "do_sample", "num_beams", "repetition_penalty", "tie_encoder_decoder",
        "chunk_size_feed_forward", "pruned_heads", "finetuning_task", "prefix", "gradient_checkpointing", "use_return_dict",
        "initializer_factor", "embedding_initializer_range", "layer_norm_type",
    };

    [GeneratedRegex("rope|rotary|theta|freq|norm|eps|scal|cap|window|sliding|bias|act|expert|moe|router|residual|parallel|partial|qk|query|key|head|attn|attention|embed|tie|logit|alibi|clip|multiplier|layer|position|gate|mlp|ffn|intermediate|hidden|kv|group|dim|size|num_|pattern|shared|sparse|topk|top_k|lora|quant",
        RegexOptions.IgnoreCase)]
    private static partial Regex Semantic();

    /// <summary>Throws <see cref="CheckpointException"/> for the first unread field of <paramref name="json"/> that looks semantic.</summary>
    public static void CheckNothingIgnored(HuggingFaceConfigJson json, string family)
    {
        foreach (var key in json.UnreadKeys)
            if (!Harmless.Contains(key) && Semantic().IsMatch(key))
                throw json.Problem($"field \"{key}\" = {json.Raw(key)} is not read by SharpLens's {family} loader, and its name suggests it changes the " +
                                   "computation. SharpLens refuses rather than give logits that differ from Hugging Face's; if the field is harmless, remove it from config.json.");
    }
}
