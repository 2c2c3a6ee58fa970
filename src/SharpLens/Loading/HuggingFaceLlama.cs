using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// Llama (model_type "llama"), and the weight layout Mistral, Qwen2, Gemma and Gemma 2 share with it. Linear
/// layers are stored as nn.Linear weights, [out, in], applied as x Wᵀ; heads sit side by side along "out":
/// <code>
/// model.embed_tokens.weight [d_vocab, d_model]              = embed.W_E
/// layers.l.input_layernorm.weight                           = blocks.l.ln1.w          (RMSNorm)
/// layers.l.self_attn.q_proj.weight [n_heads·d_head, d_model] → W_Q [n_heads, d_model, d_head]   (+ .bias → b_Q, Qwen2)
/// layers.l.self_attn.k_proj / v_proj [n_kv·d_head, d_model]  → W_K, W_V, or _W_K, _W_V with GQA [n_kv_heads, d_model, d_head]
/// layers.l.self_attn.o_proj.weight [d_model, n_heads·d_head] → W_O [n_heads, d_head, d_model]
/// layers.l.post_attention_layernorm.weight                  = blocks.l.ln2.w
/// layers.l.mlp.gate_proj / up_proj [d_mlp, d_model]          = W_gateᵀ, W_inᵀ;  down_proj [d_model, d_mlp] = W_outᵀ
/// model.norm.weight = ln_final.w;   lm_head.weight [d_vocab, d_model] = W_Uᵀ (absent when tied: W_U = W_Eᵀ)
/// </code>
/// Names sit under <c>model.</c> (…ForCausalLM) or bare (…Model); lm_head never has the prefix.
/// </summary>
public static class HuggingFaceLlama
{
    public static readonly HuggingFaceFamily Family = new("llama", ReadConfig,
        (cfg, json, tensors, into) => WriteWeights(cfg, tensors, LlamaLayout.Llama with { OutputBias = json.Bool("attention_bias", false), QkvBias = json.Bool("attention_bias", false) }, cfg.TiedEmbeddings, into));

    /// <summary>The family differences within the shared layout.</summary>
    /// <param name="QkvBias">q, k, v projections have biases (Qwen2; Llama with attention_bias)</param>
    /// <param name="OutputBias">o_proj has a bias (Llama with attention_bias)</param>
    /// <param name="NormPlusOne">RMSNorm multiplies by (1 + w) (Gemma): loaded as w + 1</param>
    /// <param name="EmbeddingScale">the embedding is multiplied by sqrt(d_model) (Gemma): folded into W_E, not into the tied W_U</param>
    /// <param name="SandwichNorms">post_attention_layernorm normalises the attention output, pre_feedforward_layernorm feeds the MLP, post_feedforward_layernorm normalises its output (Gemma 2)</param>
    /// <param name="QkNorm">self_attn.q_norm / k_norm weights normalise queries and keys: [d_head] (Qwen 3, Gemma 3) or the whole projection (OLMo 2)</param>
    /// <param name="PostNormsOnly">no input_layernorm; post_attention_layernorm and post_feedforward_layernorm normalise the sublayer outputs (OLMo 2)</param>
    /// <param name="FusedProjections">self_attn.qkv_proj holds q, k, v stacked along its output, mlp.gate_up_proj holds gate then up (Phi-3)</param>
    public sealed record LlamaLayout(bool QkvBias = false, bool OutputBias = false, bool NormPlusOne = false, bool EmbeddingScale = false, bool SandwichNorms = false,
        bool QkNorm = false, bool PostNormsOnly = false, bool FusedProjections = false)
    {
        public static readonly LlamaLayout Llama = new();
    }

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json) => (ReadLlamaLikeConfig(json, "silu") with { ModelName = ModelNameOf(json) }).Validated();

    /// <summary>The config fields every Llama-like family reads the same way.</summary>
    /// <param name="partialRotary">read partial_rotary_factor (Phi-3): only the first int(head_dim · factor) dimensions rotate</param>
    internal static ModelConfig ReadLlamaLikeConfig(HuggingFaceConfigJson json, string defaultActivation, string activationKey = "hidden_act", bool tiedByDefault = false, bool partialRotary = false)
    {
        if (json.Bool("mlp_bias", false)) throw json.Problem("mlp_bias = true is not supported: a gated MLP here has no gate bias.");
        json.Bool("attention_bias", false); // read by the weight map (biases on the projections)
        int dModel = json.Int("hidden_size"), nHeads = json.Int("num_attention_heads");
        int dHead = json.Get<int?>("head_dim") ?? (dModel % nHeads == 0 ? dModel / nHeads : throw json.Problem($"hidden_size = {dModel} is not divisible by num_attention_heads = {nHeads}, and head_dim is not given."));
        int nKv = json.Int("num_key_value_heads", nHeads);
        if (nKv <= 0 || nHeads % nKv != 0) throw json.Problem($"num_key_value_heads = {nKv} must divide num_attention_heads = {nHeads}.");
        Activation act = json.Activation(activationKey, defaultActivation);
        var cfg = new ModelConfig
        {
            DModel = dModel,
            NLayers = json.Int("num_hidden_layers"),
            NHeads = nHeads,
            DHead = dHead,
            NKeyValueHeads = nKv == nHeads ? null : nKv,
            DMlp = json.Int("intermediate_size"),
            DVocab = json.Int("vocab_size"),
            NCtx = json.Int("max_position_embeddings"),
            ActFn = act,
            GatedMlp = true,
            NormalizationType = Normalization.RMS,
            Eps = json.Double("rms_norm_eps", 1e-6),
            PositionalEmbeddingType = PositionalEmbedding.Rotary,
            TiedEmbeddings = json.Bool("tie_word_embeddings", tiedByDefault),
            BosTokenId = json.Get<int?>("bos_token_id"),
        };
        if (partialRotary && json.Double("partial_rotary_factor", 1) is var partial && partial != 1)
            cfg = cfg with { RotaryDim = (int)(dHead * partial) };
        return WithRope(cfg, HuggingFaceRope.Read(json, cfg.RotaryDimensions));
    }

    /// <summary>A config with these rotary settings: the base, Llama 3.1's fields or another scaling, and the context it extends to.</summary>
    internal static ModelConfig WithRope(ModelConfig cfg, HuggingFaceRope.Settings rope)
    {
        cfg = cfg with { RotaryBase = rope.Base, RopeScaling = rope.Scaling, NCtx = Math.Max(cfg.NCtx, rope.Context ?? 0) };
        if (rope.Llama3 is not { } l) return cfg;
        return cfg with
        {
            UseNtkByPartsRope = true,
            NtkByPartsFactor = l.Factor,
            NtkByPartsLowFreqFactor = l.Low,
            NtkByPartsHighFreqFactor = l.High,
            NtkOriginalCtxLen = l.Original,
        };
    }

    /// <summary>Sliding-window layers from config.json's layer_types ("sliding_attention" / "full_attention"), when it lists them.</summary>
    internal static IReadOnlyList<string>? AttnTypesFromLayerTypes(HuggingFaceConfigJson json, int nLayers)
    {
        var layerTypes = json.Strings("layer_types");
        if (layerTypes is null) return null;
        if (layerTypes.Count != nLayers || layerTypes.Any(t => t is not ("sliding_attention" or "full_attention")))
            throw json.Problem($"layer_types must give \"sliding_attention\" or \"full_attention\" for each of the {nLayers} layers; got [{string.Join(", ", layerTypes)}].");
        return [.. layerTypes.Select(t => t == "sliding_attention" ? "local" : "global")];
    }

    internal static string ModelNameOf(HuggingFaceConfigJson json) =>
        Path.GetFileName(Path.GetDirectoryName(json.Source)) is { Length: > 0 } folder ? folder : json.ModelType ?? "model";

    /// <summary>The Llama layout's tensors written into the model under TransformerLens names (see the class remarks).</summary>
    /// <remarks>
    /// Each stored tensor is copied from the file into a view of its parameter in the stored layout (W_Qᵀ, a head's rows,
    /// W_Uᵀ ...), so no full-size temporary is made; only Gemma's scaled embedding is converted in memory first.
    /// </remarks>
    /// <param name="tied">the checkpoint ties lm_head to embed_tokens (which Gemma's config need not say, as its W_E is scaled)</param>
    public static void WriteWeights(ModelConfig cfg, HuggingFaceTensorSource tensors, LlamaLayout layout, bool tied, ParameterWriter into)
    {
        long d = cfg.DModel, h = cfg.NHeads, kv = cfg.KeyValueHeads, dh = cfg.DHead, mlp = cfg.DMlp, vocab = cfg.DVocab;
        string m = tensors.Contains("model.embed_tokens.weight") ? "model." : "";
        string kvPrefix = cfg.NKeyValueHeads is null ? "" : "_";
        string embedding = $"{m}embed_tokens.weight"; // [d_vocab, d_model]
        Action<Tensor>? plusOne = layout.NormPlusOne ? w => w.add_(1) : null; // Gemma's RMSNorm multiplies by (1 + w)
        void Norm(string parameter, string stored) => into.Fill(parameter, w => tensors.ReadInto(stored, [d], w, adjust: plusOne)); // [d_model]

        if (layout.EmbeddingScale) // Gemma multiplies the embedding by sqrt(d_model), as a number of the activations' dtype
            into.Write("embed.W_E", () => tensors.Read(embedding, vocab, d) * torch.tensor(Math.Sqrt(cfg.DModel), ScalarType.Float32));
        else into.Fill("embed.W_E", w => tensors.ReadInto(embedding, [vocab, d], w));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"{m}layers.{l}", b = $"blocks.{l}";
            if (!layout.PostNormsOnly) Norm($"{b}.ln1.w", $"{p}.input_layernorm.weight");
            // Heads sit side by side along each projection's output rows; Phi-3 stacks q, k, v in one qkv_proj.
            void Heads(string parameter, string proj, long heads, long start) => into.Fill(parameter, w => tensors.ReadInto(
                layout.FusedProjections ? $"{p}.self_attn.qkv_proj.weight" : $"{p}.self_attn.{proj}.weight",
                layout.FusedProjections ? [(h + 2 * kv) * dh, d] : [heads * dh, d],
                w.transpose(1, 2), // [heads, d_head, d_model]: head i is rows i·d_head … (i + 1)·d_head − 1
                layout.FusedProjections ? start : 0));
            Heads($"{b}.attn.W_Q", "q_proj", h, 0); // [n_heads, d_model, d_head]
            Heads($"{b}.attn.{kvPrefix}W_K", "k_proj", kv, h * dh); // [n_kv_heads, d_model, d_head]
            Heads($"{b}.attn.{kvPrefix}W_V", "v_proj", kv, (h + kv) * dh);
            foreach (var (proj, bias, heads) in new[] { ("q_proj", "b_Q", h), ("k_proj", $"{kvPrefix}b_K", kv), ("v_proj", $"{kvPrefix}b_V", kv) })
                if (layout.QkvBias) into.Fill($"{b}.attn.{bias}", w => tensors.ReadInto($"{p}.self_attn.{proj}.bias", [heads * dh], w.view(-1))); // [heads, d_head]
                else into.Zero($"{b}.attn.{bias}");
            into.Fill($"{b}.attn.W_O", w => tensors.ReadInto($"{p}.self_attn.o_proj.weight", [d, h * dh], w.permute(2, 0, 1).view(d, h * dh))); // [n_heads, d_head, d_model]
            if (layout.OutputBias) into.Fill($"{b}.attn.b_O", w => tensors.ReadInto($"{p}.self_attn.o_proj.bias", [d], w));
            else into.Zero($"{b}.attn.b_O");
            if (layout.QkNorm)
            {
                long qLength = cfg.QkNormPerHead ? dh : h * dh, kLength = cfg.QkNormPerHead ? dh : kv * dh; // [d_head] or the whole projection
                into.Fill($"{b}.attn.q_norm.w", w => tensors.ReadInto($"{p}.self_attn.q_norm.weight", [qLength], w, adjust: plusOne));
                into.Fill($"{b}.attn.k_norm.w", w => tensors.ReadInto($"{p}.self_attn.k_norm.weight", [kLength], w, adjust: plusOne));
            }
            if (layout.SandwichNorms)
            {
                Norm($"{b}.ln1_post.w", $"{p}.post_attention_layernorm.weight");
                Norm($"{b}.ln2.w", $"{p}.pre_feedforward_layernorm.weight");
                Norm($"{b}.ln2_post.w", $"{p}.post_feedforward_layernorm.weight");
            }
            else if (layout.PostNormsOnly)
            {
                Norm($"{b}.ln1_post.w", $"{p}.post_attention_layernorm.weight");
                Norm($"{b}.ln2_post.w", $"{p}.post_feedforward_layernorm.weight");
            }
            else Norm($"{b}.ln2.w", $"{p}.post_attention_layernorm.weight");
            if (cfg.IsMoe)
            {
                // Mixtral: block_sparse_moe.gate [num_experts, d_model] is the router; experts.e.w1 (gate), w3 (up), w2 (down).
                string moe = $"{p}.block_sparse_moe";
                into.Fill($"{b}.mlp.W_gate", w => tensors.ReadInto($"{moe}.gate.weight", [cfg.NumExperts!.Value, d], w.t())); // [d_model, num_experts]
                for (int e = 0; e < cfg.NumExperts!.Value; e++)
                {
                    string x = $"{b}.mlp.experts.{e}", stored = $"{moe}.experts.{e}";
                    into.Fill($"{x}.W_gate", w => tensors.ReadInto($"{stored}.w1.weight", [mlp, d], w.t())); // [d_model, d_mlp]
                    into.Fill($"{x}.W_in", w => tensors.ReadInto($"{stored}.w3.weight", [mlp, d], w.t())); // [d_model, d_mlp]
                    into.Zero($"{x}.b_in");
                    into.Fill($"{x}.W_out", w => tensors.ReadInto($"{stored}.w2.weight", [d, mlp], w.t())); // [d_mlp, d_model]
                    into.Zero($"{x}.b_out");
                }
                continue;
            }
            // Phi-3 stacks gate then up along gate_up_proj's output rows.
            void GateOrUp(string parameter, string proj, long start) => into.Fill(parameter, w => tensors.ReadInto(
                layout.FusedProjections ? $"{p}.mlp.gate_up_proj.weight" : $"{p}.mlp.{proj}.weight",
                layout.FusedProjections ? [2 * mlp, d] : [mlp, d], w.t(), layout.FusedProjections ? start : 0)); // [d_model, d_mlp]
            GateOrUp($"{b}.mlp.W_gate", "gate_proj", 0);
            GateOrUp($"{b}.mlp.W_in", "up_proj", mlp);
            into.Zero($"{b}.mlp.b_in");
            into.Fill($"{b}.mlp.W_out", w => tensors.ReadInto($"{p}.mlp.down_proj.weight", [d, mlp], w.t())); // [d_mlp, d_model]
            into.Zero($"{b}.mlp.b_out");
        }
        Norm("ln_final.w", $"{m}norm.weight");
        if (tied) tensors.Skip("lm_head.weight");
        into.Fill("unembed.W_U", w => tensors.ReadInto(tied ? embedding : "lm_head.weight", [vocab, d], w.t())); // [d_model, d_vocab]
        into.Zero("unembed.b_U");
        tensors.CheckAllUsed(cfg.ModelName, n => n.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal));
    }

    /// <summary>
    /// Writes config.json and model.safetensors in LlamaForCausalLM's layout (the class remarks, read backwards) into
    /// <paramref name="folder"/>, so the folder loads here and in Hugging Face transformers. Only a plain Llama can be
    /// saved: RMSNorm, rotary positions over all of d_head without scaling, a SwiGLU MLP, no biases, no GQA, untied embeddings.
    /// </summary>
    public static void Save(HookedTransformer model, string folder, int? eosTokenId = null)
    {
        var cfg = model.Config;
        var problems = new List<string>();
        if (cfg.NormalizationType != Normalization.RMS || cfg.FinalNormalization != Normalization.RMS) problems.Add($"normalization is {cfg.NormalizationType} (Llama has RMSNorm with a weight)");
        if (cfg.PositionalEmbeddingType != PositionalEmbedding.Rotary || cfg.RotaryDimensions != cfg.DHead || cfg.UseNtkByPartsRope) problems.Add("positions are not plain rotary over all of d_head");
        if (!cfg.GatedMlp || cfg.AttnOnly || cfg.ActFn != Activation.Silu) problems.Add("the MLP is not SwiGLU");
        if (cfg.NKeyValueHeads is not null) problems.Add("grouped-query attention is not written yet");
        if (cfg.TiedEmbeddings) problems.Add("tied embeddings are not written yet");
        if (cfg.ParallelAttnMlp || cfg.UseNormalizationBeforeAndAfter || cfg.AttnScale is not null || cfg.UseLocalAttn) problems.Add("the block is not Llama's");
        if (problems.Count == 0)
            using (torch.NewDisposeScope())
            using (torch.no_grad())
                foreach (var (name, p) in model.named_parameters())
                    if (name[(name.LastIndexOf('.') + 1)..].TrimStart('_').StartsWith("b_", StringComparison.Ordinal) && p.count_nonzero().item<long>() != 0)
                        problems.Add($"{name} is not zero (Llama has no biases)");
        if (problems.Count > 0)
            throw new SharpLensArgumentException(nameof(model), $"{cfg.ModelName} cannot be saved in the Hugging Face Llama layout: {string.Join("; ", problems)}.");

        long d = cfg.DModel, h = cfg.NHeads, dh = cfg.DHead;
        var weights = new List<(string Name, Func<Tensor> Hf)> { ("model.embed_tokens.weight", () => model.embed.W_E) };
        Tensor HeadsOut(Tensor W) => W.permute(0, 2, 1).reshape(W.shape[0] * dh, d); // [heads, d_model, d_head] → [heads·d_head, d_model]
        for (int l = 0; l < cfg.NLayers; l++)
        {
            var block = model.blocks[l];
            string p = $"model.layers.{l}";
            weights.Add(($"{p}.input_layernorm.weight", () => block.ln1.w!));
            weights.Add(($"{p}.self_attn.q_proj.weight", () => HeadsOut(block.attn.W_Q)));
            weights.Add(($"{p}.self_attn.k_proj.weight", () => HeadsOut(block.attn._W_K)));
            weights.Add(($"{p}.self_attn.v_proj.weight", () => HeadsOut(block.attn._W_V)));
            weights.Add(($"{p}.self_attn.o_proj.weight", () => block.attn.W_O.permute(2, 0, 1).reshape(d, h * dh))); // [d_model, heads·d_head]
            weights.Add(($"{p}.post_attention_layernorm.weight", () => block.ln2!.w!));
            weights.Add(($"{p}.mlp.gate_proj.weight", () => block.mlp!.W_gate!.t()));
            weights.Add(($"{p}.mlp.up_proj.weight", () => block.mlp!.W_in.t()));
            weights.Add(($"{p}.mlp.down_proj.weight", () => block.mlp!.W_out.t()));
        }
        weights.Add(("model.norm.weight", () => model.ln_final.w!));
        weights.Add(("lm_head.weight", () => model.unembed.W_U.t()));

        var dtype = model.embed.W_E.dtype;
        var specs = new List<SafeTensorSpec>();
        using (torch.NewDisposeScope())
        using (torch.no_grad())
            foreach (var (name, hf) in weights) specs.Add(new SafeTensorSpec(name, dtype, hf().shape));
        var byName = weights.ToDictionary(w => w.Name, w => w.Hf);
        folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(folder);
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = cfg.DModel,
            ["intermediate_size"] = cfg.DMlp,
            ["num_hidden_layers"] = cfg.NLayers,
            ["num_attention_heads"] = cfg.NHeads,
            ["num_key_value_heads"] = cfg.NHeads,
            ["head_dim"] = cfg.DHead,
            ["max_position_embeddings"] = cfg.NCtx,
            ["vocab_size"] = cfg.DVocab,
            ["hidden_act"] = "silu",
            ["rms_norm_eps"] = cfg.Eps,
            ["rope_theta"] = cfg.RotaryBase,
            ["attention_bias"] = false,
            ["mlp_bias"] = false,
            ["tie_word_embeddings"] = false,
            ["initializer_range"] = cfg.InitializerRange ?? 0.02,
            ["bos_token_id"] = cfg.BosTokenId,
            ["eos_token_id"] = eosTokenId ?? cfg.BosTokenId,
            ["torch_dtype"] = dtype switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" },
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        string configTemp = IO.AtomicFile.TemporaryFor(Path.Combine(folder, "config.json"));
        try
        {
            File.WriteAllText(configTemp, config);
            using (torch.no_grad()) SafeTensorsWriter.Write(Path.Combine(folder, SafeTensorsCheckpoint.SingleFile), specs, name => byName[name]());
            File.Move(configTemp, Path.Combine(folder, "config.json"), overwrite: true);
        }
        finally { File.Delete(configTemp); }
    }

    /// <summary>An nn.Linear weight with heads side by side along its output, [heads·d_head, d_model] → [heads, d_model, d_head].</summary>
    internal static Tensor HeadsIn(Tensor linear, long heads) =>
        linear.view(heads, linear.shape[0] / heads, linear.shape[1]).permute(0, 2, 1);
}
