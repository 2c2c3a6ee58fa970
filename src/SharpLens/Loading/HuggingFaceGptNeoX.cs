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
    public static readonly HuggingFaceFamily Family = new("gpt_neox", ReadConfig, (cfg, json, tensors) => ToStateDict(cfg, tensors, json.Bool("attention_bias", true)));

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        json.Bool("attention_bias", true); // read by the weight map
        int dModel = json.Int("hidden_size"), nHeads = json.Int("num_attention_heads");
        if (dModel % nHeads != 0) throw json.Problem($"hidden_size = {dModel} is not divisible by num_attention_heads = {nHeads}.");
        int dHead = dModel / nHeads;
        if (json.IsSet("rope_scaling")) throw json.Problem($"rope_scaling is {json.Raw("rope_scaling")}; rotary scaling is not supported yet.");
        Activation act;
        try { act = ModelConfig.ParseActivation(json.Get<string>("hidden_act") ?? "gelu"); }
        catch (NotSupportedException e) { throw json.Problem(e.Message); }
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

    public static Dictionary<string, Tensor> ToStateDict(ModelConfig cfg, HuggingFaceTensorSource tensors, bool attentionBias = true)
    {
        long d = cfg.DModel, h = cfg.NHeads, dh = cfg.DHead, mlp = cfg.DMlp, vocab = cfg.DVocab;
        string m = tensors.Contains("gpt_neox.embed_in.weight") ? "gpt_neox." : "";
        var sd = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var embedding = tensors.Read($"{m}embed_in.weight", vocab, d); // [d_vocab, d_model]
        sd["embed.W_E"] = embedding;
        string[] qkv = ["Q", "K", "V"];
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"{m}layers.{l}", b = $"blocks.{l}";
            sd[$"{b}.ln1.w"] = tensors.Read($"{p}.input_layernorm.weight", d);
            sd[$"{b}.ln1.b"] = tensors.Read($"{p}.input_layernorm.bias", d);
            var fused = tensors.Read($"{p}.attention.query_key_value.weight", 3 * h * dh, d).view(h, 3, dh, d); // [head, q/k/v, d_head, d_model]
            var fusedBias = attentionBias ? tensors.Read($"{p}.attention.query_key_value.bias", 3 * h * dh).view(h, 3, dh) : torch.zeros(h, 3, dh); // [head, q/k/v, d_head]
            for (int i = 0; i < 3; i++)
            {
                sd[$"{b}.attn.W_{qkv[i]}"] = fused[.., i].permute(0, 2, 1); // [head, d_model, d_head]
                sd[$"{b}.attn.b_{qkv[i]}"] = fusedBias[.., i]; // [head, d_head]
            }
            sd[$"{b}.attn.W_O"] = tensors.Read($"{p}.attention.dense.weight", d, h * dh).view(d, h, dh).permute(1, 2, 0); // [head, d_head, d_model]
            sd[$"{b}.attn.b_O"] = attentionBias ? tensors.Read($"{p}.attention.dense.bias", d) : torch.zeros(d);
            sd[$"{b}.ln2.w"] = tensors.Read($"{p}.post_attention_layernorm.weight", d);
            sd[$"{b}.ln2.b"] = tensors.Read($"{p}.post_attention_layernorm.bias", d);
            sd[$"{b}.mlp.W_in"] = tensors.Read($"{p}.mlp.dense_h_to_4h.weight", mlp, d).t(); // [d_model, d_mlp]
            sd[$"{b}.mlp.b_in"] = tensors.Read($"{p}.mlp.dense_h_to_4h.bias", mlp);
            sd[$"{b}.mlp.W_out"] = tensors.Read($"{p}.mlp.dense_4h_to_h.weight", d, mlp).t(); // [d_mlp, d_model]
            sd[$"{b}.mlp.b_out"] = tensors.Read($"{p}.mlp.dense_4h_to_h.bias", d);
        }
        sd["ln_final.w"] = tensors.Read($"{m}final_layer_norm.weight", d);
        sd["ln_final.b"] = tensors.Read($"{m}final_layer_norm.bias", d);
        if (cfg.TiedEmbeddings) tensors.Skip("embed_out.weight");
        sd["unembed.W_U"] = cfg.TiedEmbeddings ? embedding.t() : tensors.Read("embed_out.weight", vocab, d).t(); // [d_model, d_vocab]
        sd["unembed.b_U"] = torch.zeros(vocab);
        tensors.CheckAllUsed(cfg.ModelName, n => n.EndsWith(".attention.bias", StringComparison.Ordinal) && !n.Contains("query_key_value", StringComparison.Ordinal)
            || n.EndsWith(".attention.masked_bias", StringComparison.Ordinal) || n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal));
        return sd;
    }
}
