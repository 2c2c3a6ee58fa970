using System.Text.Json.Nodes;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading.Llama2c;

/// <summary>
/// llama2.c checkpoints as Llama-architecture <see cref="HookedTransformer"/>s, and back.
/// </summary>
/// <remarks>
/// Loading goes through the Hugging Face Llama loader, so a llama2.c model is processed, hooked and named exactly as a
/// Hugging Face Llama is. The one real conversion is rotary: llama2.c (like Meta's original code) rotates adjacent pairs
/// (q[2i], q[2i+1]) of each head, Hugging Face rotates q[i] against q[i + d_head/2]. Reordering the rows of wq and wk
/// within each head, pair members to the two halves, turns one into the other exactly:
/// <code>
/// hf[h, j, :]            = l2c[h, 2j, :]       j &lt; d_head/2
/// hf[h, j + d_head/2, :] = l2c[h, 2j + 1, :]
/// </code>
/// (Hugging Face's own Llama conversion script does the same.) Everything else is a renaming:
/// <code>
/// tok_embeddings [vocab, dim] = model.embed_tokens     layers.l.attention_norm = input_layernorm
/// attention.wq/wk/wv/wo       = self_attn.q/k/v/o_proj (wq, wk reordered as above)
/// ffn_norm = post_attention_layernorm;  feed_forward.w1 = mlp.gate_proj, w3 = up_proj, w2 = down_proj
/// norm = model.norm;  output = lm_head (absent, and tied, when the header's vocab_size is positive)
/// </code>
/// </remarks>
public static class Llama2cConversion
{
    /// <summary>
    /// Loads a llama2.c <c>.bin</c> file; processed like any pretrained model unless <paramref name="processing"/> says
    /// otherwise. A <c>tokenizer.bin</c> beside it becomes the model's tokenizer.
    /// </summary>
    public static HookedTransformer Load(string path, ModelOptions? options = null, WeightProcessingOptions? processing = null)
    {
        path = Path.GetFullPath(path);
        var (header, tensors) = Llama2cCheckpoint.Read(path);
        Dictionary<string, Tensor>? hf = null;
        try
        {
            (string configJson, hf) = ToHuggingFace(header, tensors, Path.GetFileNameWithoutExtension(path));
            var model = HookedTransformer.FromHuggingFace(configJson, HuggingFaceTensorSource.From(hf, path), options, processing);
            string tokenizerPath = Path.Combine(Path.GetDirectoryName(path)!, "tokenizer.bin");
            if (File.Exists(tokenizerPath))
                model.Tokenizer = Tokenization.ModelTokenizer.FromLlama2c(Tokenization.Llama2cTokenizer.Read(tokenizerPath, header.VocabSize), tokenizerPath);
            return model;
        }
        finally
        {
            // The model holds copies; the file's tensors and the reordered ones go.
            foreach (var t in tensors.Values.Concat(hf?.Values ?? Enumerable.Empty<Tensor>())) t.Dispose();
        }
    }

    /// <summary>A Hugging Face Llama config.json text and Hugging Face-named tensors for a llama2.c checkpoint.</summary>
    public static (string ConfigJson, Dictionary<string, Tensor> Tensors) ToHuggingFace(Llama2cHeader header, IReadOnlyDictionary<string, Tensor> l2c, string modelName = "llama2c")
    {
        var config = new JsonObject
        {
            ["model_type"] = "llama", ["architectures"] = new JsonArray("LlamaForCausalLM"), ["_name_or_path"] = modelName,
            ["hidden_size"] = header.Dim, ["intermediate_size"] = header.HiddenDim, ["num_hidden_layers"] = header.NLayers,
            ["num_attention_heads"] = header.NHeads, ["num_key_value_heads"] = header.NKvHeads, ["vocab_size"] = header.VocabSize,
            ["max_position_embeddings"] = header.SeqLen, ["rms_norm_eps"] = Llama2cCheckpoint.RmsNormEps,
            ["rope_theta"] = Llama2cCheckpoint.RopeTheta, ["hidden_act"] = "silu", ["tie_word_embeddings"] = header.SharedClassifier,
            ["bos_token_id"] = 1, ["eos_token_id"] = 2,
        };
        var hf = new Dictionary<string, Tensor> { ["model.embed_tokens.weight"] = l2c["tok_embeddings.weight"], ["model.norm.weight"] = l2c["norm.weight"] };
        if (!header.SharedClassifier) hf["lm_head.weight"] = l2c["output.weight"];
        for (int l = 0; l < header.NLayers; l++)
        {
            string from = $"layers.{l}.", to = $"model.layers.{l}.";
            hf[to + "input_layernorm.weight"] = l2c[from + "attention_norm.weight"];
            hf[to + "self_attn.q_proj.weight"] = PairsToHalves(l2c[from + "attention.wq.weight"], header.NHeads, header.HeadSize);
            hf[to + "self_attn.k_proj.weight"] = PairsToHalves(l2c[from + "attention.wk.weight"], header.NKvHeads, header.HeadSize);
            hf[to + "self_attn.v_proj.weight"] = l2c[from + "attention.wv.weight"];
            hf[to + "self_attn.o_proj.weight"] = l2c[from + "attention.wo.weight"];
            hf[to + "post_attention_layernorm.weight"] = l2c[from + "ffn_norm.weight"];
            hf[to + "mlp.gate_proj.weight"] = l2c[from + "feed_forward.w1.weight"];
            hf[to + "mlp.up_proj.weight"] = l2c[from + "feed_forward.w3.weight"];
            hf[to + "mlp.down_proj.weight"] = l2c[from + "feed_forward.w2.weight"];
        }
        return (config.ToJsonString(), hf);
    }

    /// <summary>
    /// Writes a Llama-architecture model as a llama2.c checkpoint. The model must be one llama2.c can express: RMSNorm
    /// (unprocessed: load with <see cref="WeightProcessingOptions.None"/>), rotary over whole heads with base 10000, SiLU-gated
    /// MLP, eps 1e-5, no biases, n_heads · d_head = d_model; anything else is refused with what differs.
    /// </summary>
    public static void Export(HookedTransformer model, string path)
    {
        var cfg = model.Config;
        var problems = Unexpressible(cfg).ToList();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var state = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        foreach (var (name, value) in state)
            if (name.Split('.')[^1].TrimStart('_').StartsWith("b_", StringComparison.Ordinal) && value.abs().max().item<float>() != 0) // b_Q, and _b_K / _b_V under grouped-query attention
                problems.Add($"bias {name} is not zero (llama2.c has no biases)");
        if (problems.Count > 0)
            throw new ArgumentException($"Cannot export '{cfg.ModelName}' to llama2.c: {string.Join("; ", problems)}.", nameof(model));

        bool shared = cfg.TiedEmbeddings;
        if (!shared) shared = state["unembed.W_U"].t().equal(state["embed.W_E"]).all().item<bool>(); // untied in name, tied in value
        var header = new Llama2cHeader(cfg.DModel, cfg.DMlp, cfg.NLayers, cfg.NHeads, cfg.KeyValueHeads, cfg.DVocab, cfg.NCtx, shared);
        var l2c = new Dictionary<string, Tensor> { ["tok_embeddings.weight"] = state["embed.W_E"], ["norm.weight"] = state["ln_final.w"] };
        if (!shared) l2c["output.weight"] = state["unembed.W_U"].t();
        string kv = cfg.NKeyValueHeads is null ? "" : "_"; // grouped-query attention names its shared weights _W_K, _W_V
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string from = $"blocks.{l}.", to = $"layers.{l}.";
            l2c[to + "attention_norm.weight"] = state[from + "ln1.w"];
            l2c[to + "attention.wq.weight"] = HalvesToPairs(PerHeadToLinear(state[from + "attn.W_Q"]), cfg.NHeads, cfg.DHead);
            l2c[to + "attention.wk.weight"] = HalvesToPairs(PerHeadToLinear(state[from + $"attn.{kv}W_K"]), cfg.KeyValueHeads, cfg.DHead);
            l2c[to + "attention.wv.weight"] = PerHeadToLinear(state[from + $"attn.{kv}W_V"]);
            l2c[to + "attention.wo.weight"] = state[from + "attn.W_O"].reshape(cfg.NHeads * cfg.DHead, cfg.DModel).t(); // [dim, heads·d_head]
            l2c[to + "ffn_norm.weight"] = state[from + "ln2.w"];
            l2c[to + "feed_forward.w1.weight"] = state[from + "mlp.W_gate"].t(); // [hidden, dim]
            l2c[to + "feed_forward.w3.weight"] = state[from + "mlp.W_in"].t();
            l2c[to + "feed_forward.w2.weight"] = state[from + "mlp.W_out"].t(); // [dim, hidden]
        }
        Llama2cCheckpoint.Write(path, header, l2c);
    }

    static IEnumerable<string> Unexpressible(ModelConfig cfg)
    {
        if (cfg.NormalizationType != Normalization.RMS || cfg.FinalNormalization != Normalization.RMS)
            yield return $"its norms are {cfg.NormalizationType}/{cfg.FinalNormalization}, not RMS (a processed model has RMSPre: load it with WeightProcessingOptions.None)";
        if (cfg.PositionalEmbeddingType != PositionalEmbedding.Rotary) yield return $"positions are {cfg.PositionalEmbeddingType}, not rotary";
        else
        {
            if (cfg.RotaryDimensions != cfg.DHead) yield return $"rotary covers {cfg.RotaryDimensions} of {cfg.DHead} head dimensions, llama2.c rotates all";
            if (cfg.RotaryBase != Llama2cCheckpoint.RopeTheta) yield return $"rotary base is {cfg.RotaryBase}, llama2.c uses {Llama2cCheckpoint.RopeTheta}";
        }
        if (!cfg.GatedMlp || cfg.ActFn != Activation.Silu || cfg.AttnOnly) yield return "the MLP is not SiLU-gated (SwiGLU)";
        if (Math.Abs(cfg.Eps - Llama2cCheckpoint.RmsNormEps) > 1e-12) yield return $"eps is {cfg.Eps}, llama2.c uses {Llama2cCheckpoint.RmsNormEps}";
        if (cfg.NHeads * cfg.DHead != cfg.DModel) yield return $"n_heads · d_head = {cfg.NHeads * cfg.DHead} differs from d_model = {cfg.DModel}";
        if (cfg.ParallelAttnMlp) yield return "attention and MLP run in parallel";
        if (cfg.UseNormalizationBeforeAndAfter) yield return "it has post-sublayer norms";
        if (cfg.AttnScoresSoftCap is not null || cfg.OutputLogitsSoftCap is not null) yield return "it soft-caps scores or logits";
        if (cfg.UseLocalAttn) yield return "it has sliding-window layers";
        if (cfg.AttnScale is not null) yield return "its attention scale is not sqrt(d_head)";
    }

    /// <summary>[heads, d_model, d_head] per-head weights → an nn.Linear weight [heads·d_head, d_model].</summary>
    static Tensor PerHeadToLinear(Tensor perHead) => perHead.transpose(1, 2).reshape(-1, perHead.shape[1]);

    /// <summary>Rows of each head from adjacent-pair order (llama2.c) to half-and-half order (Hugging Face): [heads·d_head, in].</summary>
    static Tensor PairsToHalves(Tensor w, int heads, int headSize) =>
        w.reshape(heads, headSize / 2, 2, w.shape[1]).transpose(1, 2).reshape(heads * headSize, w.shape[1]);

    /// <summary>The inverse of <see cref="PairsToHalves"/>.</summary>
    static Tensor HalvesToPairs(Tensor w, int heads, int headSize) =>
        w.reshape(heads, 2, headSize / 2, w.shape[1]).transpose(1, 2).reshape(heads * headSize, w.shape[1]);
}
