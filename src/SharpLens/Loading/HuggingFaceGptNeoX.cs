using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// GPT-NeoX and Pythia (model_type "gpt_neox"): LayerNorm, exact GELU, partial rotary (rotary_pct of each head),
/// and by default parallel attention and MLP (use_parallel_residual). Linear weights are nn.Linear, [out, in]:
/// <code>
/// gpt_neox.embed_in.weight [d_vocab, d_model]              = embed.W_E;   embed_out.weight = W_Uᵀ (untied)
/// layers.l.input_layernorm.weight/bias                     = blocks.l.ln1.w/b;   post_attention_layernorm → ln2
/// layers.l.attention.query_key_value.weight [3·d_model, d_model], rows ordered [head, (q, k, v), d_head]
///                                                          → W_Q, W_K, W_V [n_heads, d_model, d_head]; its bias likewise
/// layers.l.attention.dense.weight [d_model, d_model]       → W_O [n_heads, d_head, d_model];  .bias = b_O
/// layers.l.mlp.dense_h_to_4h [d_mlp, d_model] = W_inᵀ, b_in;  dense_4h_to_h [d_model, d_mlp] = W_outᵀ, b_out
/// gpt_neox.final_layer_norm.weight/bias                    = ln_final.w/b
/// </code>
/// attention.bias, attention.masked_bias and attention.rotary_emb.inv_freq are buffers of old checkpoints, skipped.
/// </summary>
public static class HuggingFaceGptNeoX
{
    public static readonly HuggingFaceFamily Family = new("gpt_neox", ReadConfig, (cfg, json, tensors, into) => WriteWeights(cfg, tensors, json.Bool("attention_bias", true), into));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        json.Bool("attention_bias", true); // read by the weight map
        var (dModel, nHeads) = json.Heads("hidden_size", "num_attention_heads");
        int dHead = dModel / nHeads;
        if (json.IsSet("rope_scaling")) throw json.Problem($"rope_scaling is {json.Raw("rope_scaling")}; rotary scaling is not supported yet.");
        Activation act = json.Activation("hidden_act", "gelu");
        return new ModelConfig
        {
            DModel = dModel,
            NLayers = json.Int("num_hidden_layers"),
            NHeads = nHeads,
            DHead = dHead,
            DMlp = json.Int("intermediate_size"),
            DVocab = json.Int("vocab_size"),
            NCtx = json.Int("max_position_embeddings"),
            ActFn = act,
            Eps = json.Double("layer_norm_eps", 1e-5),
            PositionalEmbeddingType = PositionalEmbedding.Rotary,
            RotaryDim = (int)(dHead * json.Double("rotary_pct", json.Double("partial_rotary_factor", 0.25))),
            RotaryBase = json.Get<double?>("rope_theta") ?? json.Double("rotary_emb_base", 10000),
            ParallelAttnMlp = json.Bool("use_parallel_residual", true),
            TiedEmbeddings = json.Bool("tie_word_embeddings", false),
            BosTokenId = json.Get<int?>("bos_token_id"),
            ModelName = HuggingFaceLlama.ModelNameOf(json),
        }.Validated();
    }

    public static void WriteWeights(ModelConfig cfg, HuggingFaceTensorSource tensors, bool attentionBias, ParameterWriter into)
    {
        long d = cfg.DModel, h = cfg.NHeads, dh = cfg.DHead, mlp = cfg.DMlp, vocab = cfg.DVocab;
        string m = tensors.Contains("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
        Tensor Embedding() => tensors.Read($"{m}embed_in.weight", vocab, d); // [d_vocab, d_model]
        into.Write("embed.W_E", Embedding);
        string[] qkv = ["Q", "K", "V"];
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"{m}layers.{l}", b = $"blocks.{l}";
            into.Write($"{b}.ln1.w", () => tensors.Read($"{p}.input_layernorm.weight", d));
            into.Write($"{b}.ln1.b", () => tensors.Read($"{p}.input_layernorm.bias", d));
            Tensor Fused() => tensors.Read($"{p}.attention.query_key_value.weight", 3 * h * dh, d).view(h, 3, dh, d); // [head, q/k/v, d_head, d_model]
            for (int i = 0; i < 3; i++)
            {
                int part = i;
                into.Write($"{b}.attn.W_{qkv[i]}", () => Fused()[.., part].permute(0, 2, 1)); // [head, d_model, d_head]
                if (attentionBias) into.Write($"{b}.attn.b_{qkv[i]}", () => tensors.Read($"{p}.attention.query_key_value.bias", 3 * h * dh).view(h, 3, dh)[.., part]); // [head, d_head]
                else into.Zero($"{b}.attn.b_{qkv[i]}");
            }
            into.Write($"{b}.attn.W_O", () => tensors.Read($"{p}.attention.dense.weight", d, h * dh).view(d, h, dh).permute(1, 2, 0)); // [head, d_head, d_model]
            if (attentionBias) into.Write($"{b}.attn.b_O", () => tensors.Read($"{p}.attention.dense.bias", d));
            else into.Zero($"{b}.attn.b_O");
            into.Write($"{b}.ln2.w", () => tensors.Read($"{p}.post_attention_layernorm.weight", d));
            into.Write($"{b}.ln2.b", () => tensors.Read($"{p}.post_attention_layernorm.bias", d));
            into.Write($"{b}.mlp.W_in", () => tensors.Read($"{p}.mlp.dense_h_to_4h.weight", mlp, d).t()); // [d_model, d_mlp]
            into.Write($"{b}.mlp.b_in", () => tensors.Read($"{p}.mlp.dense_h_to_4h.bias", mlp));
            into.Write($"{b}.mlp.W_out", () => tensors.Read($"{p}.mlp.dense_4h_to_h.weight", d, mlp).t()); // [d_mlp, d_model]
            into.Write($"{b}.mlp.b_out", () => tensors.Read($"{p}.mlp.dense_4h_to_h.bias", d));
        }
        into.Write("ln_final.w", () => tensors.Read($"{m}final_layer_norm.weight", d));
        into.Write("ln_final.b", () => tensors.Read($"{m}final_layer_norm.bias", d));
        if (cfg.TiedEmbeddings) tensors.Skip("embed_out.weight");
        into.Write("unembed.W_U", () => (cfg.TiedEmbeddings ? Embedding() : tensors.Read("embed_out.weight", vocab, d)).t()); // [d_model, d_vocab]
        into.Zero("unembed.b_U");
        tensors.CheckAllUsed(cfg.ModelName, n => n.EndsWith(".attention.bias", StringComparison.Ordinal) && !n.Contains("query_key_value", StringComparison.Ordinal)
            || n.EndsWith(".attention.masked_bias", StringComparison.Ordinal) || n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal));
    }
}
