using SharpLens.Models;
using SharpLens.Models.Encoder;
using TorchSharp;
using static TorchSharp.torch;
using static SharpLens.Loading.StoredPart;

namespace SharpLens.Loading;

/// <summary>
/// The Hugging Face BERT family (model_type "bert"): how its config.json reads as a <see cref="ModelConfig"/>,
/// and how its weight names and layouts map onto <see cref="HookedEncoder"/>'s parameters. No model code lives here.
/// </summary>
/// <remarks>
/// HF stores nn.Linear weights as [out, in] and applies x Wᵀ + b; SharpLens stores [in, out] and applies x W + b:
/// <code>
/// embeddings.word_embeddings.weight [d_vocab, d_model]      = embed.embed.W_E
/// embeddings.position_embeddings.weight [n_ctx, d_model]    = embed.pos_embed.W_pos
/// embeddings.token_type_embeddings.weight [2, d_model]      = embed.token_type_embed.W_token_type
/// embeddings.LayerNorm.weight/bias                          = embed.ln.w/b
/// encoder.layer.l.attention.self.query.weight [h·d_head, d_model] → ᵀ, viewed [d_model, head, d_head] → W_Q [head, d_model, d_head]
///   (key → W_K, value → W_V);  ….query.bias [h·d_head] viewed [head, d_head] = b_Q (b_K, b_V)
/// encoder.layer.l.attention.output.dense.weight [d_model, h·d_head] → ᵀ viewed [head, d_head, d_model] = W_O; .bias = b_O
/// encoder.layer.l.attention.output.LayerNorm.*              = blocks.l.ln1.*   (after attention: BERT is post-norm)
/// encoder.layer.l.intermediate.dense.weight [d_mlp, d_model] → ᵀ = W_in;  .bias = b_in
/// encoder.layer.l.output.dense.weight [d_model, d_mlp] → ᵀ = W_out;       .bias = b_out
/// encoder.layer.l.output.LayerNorm.*                        = blocks.l.ln2.*
/// cls.predictions.transform.dense.weight → ᵀ = mlm_head.W;  .bias = mlm_head.b;  transform.LayerNorm.* = mlm_head.ln.*
/// cls.predictions.bias (or decoder.bias) [d_vocab] = unembed.b_U;  decoder.weight [d_vocab, d_model] → ᵀ = W_U, else W_Eᵀ (tied)
/// </code>
/// Names appear bare (BertModel) or under <c>bert.</c> (BertForMaskedLM, whose <c>cls.</c> head is never prefixed).
/// Skipped: embeddings.position_ids (a buffer), pooler.* and cls.seq_relationship.* (heads HookedEncoder does not have).
/// </remarks>
public static class HuggingFaceBert
{
    public const string ConfigFile = "config.json";
    const string Prefix = "bert.";
    const string MlmProbe = "cls.predictions.transform.dense.weight";
    const string Decoder = "cls.predictions.decoder.weight";

    public static readonly HuggingFaceFamily Family = new("bert", ReadConfig, (cfg, json, tensors, into) => WriteWeights(cfg, tensors, into))
    {
        Encoder = (cfg, tensors, options) => HookedEncoder.Uninitialized(cfg, HasMlmHead(tensors), options),
    };

    /// <summary>Reads a BERT config.json; unsupported variants throw <see cref="CheckpointException"/>.</summary>
    public static ModelConfig ReadConfig(string configPath)
    {
        var json = HuggingFaceConfigJson.ReadFile(configPath);
        return json.Checked(() => ReadConfig(json));
    }

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        json.ExpectModelType("bert", "BERT");
        if (json.Int("type_vocab_size", TokenTypeEmbed.TokenTypes) is var types && types != TokenTypeEmbed.TokenTypes)
            throw json.Problem($"type_vocab_size is {types}; HookedEncoder has exactly {TokenTypeEmbed.TokenTypes} token types.");
        if ((json.Get<string>("position_embedding_type") ?? "absolute") is var positions && positions != "absolute")
            throw json.Problem($"position_embedding_type is \"{positions}\"; only absolute (learned) positions are supported.");
        var (dModel, nHeads) = json.Heads("hidden_size", "num_attention_heads");
        Activation act = json.Activation("hidden_act", "gelu");
        return new ModelConfig
        {
            DModel = dModel,
            NLayers = json.Int("num_hidden_layers"),
            NHeads = nHeads,
            DHead = dModel / nHeads,
            DMlp = json.Int("intermediate_size"),
            DVocab = json.Int("vocab_size"),
            NCtx = json.Int("max_position_embeddings", 512),
            ActFn = act,
            Eps = json.Double("layer_norm_eps", 1e-12),
            TiedEmbeddings = json.Bool("tie_word_embeddings", true),
            ModelName = HuggingFaceLlama.ModelNameOf(json),
        }.Validated();
    }

    /// <summary>
    /// Loads config.json and the safetensors weights of a BERT folder (BertModel or BertForMaskedLM). The masked-LM
    /// head is built when the checkpoint has one. (The family table's path: <see cref="HuggingFaceModels.LoadEncoder"/>.)
    /// </summary>
    public static HookedEncoder Load(string folder, ModelOptions? options = null) => HuggingFaceModels.LoadEncoder(folder, options);

    /// <summary>
    /// An encoder from tensors named and laid out as HF's BertModel / BertForMaskedLM, for a config that does not come
    /// from a config.json (an ONNX export's): the same weight map every BERT source goes through.
    /// </summary>
    internal static HookedEncoder Load(ModelConfig config, HuggingFaceTensorSource tensors, ModelOptions? options) =>
        ParameterWriter.Fill(HookedEncoder.Uninitialized(config, HasMlmHead(tensors), options), into => WriteWeights(config, tensors, into));

    static string PrefixOf(HuggingFaceTensorSource tensors) => tensors.Contains(Prefix + "embeddings.word_embeddings.weight") ? Prefix : "";

    static bool HasMlmHead(HuggingFaceTensorSource tensors) => tensors.Contains(MlmProbe);

    /// <summary>The BERT tensors written into the encoder: the weight map read forwards, each tensor copied from the file into a view of its parameter.</summary>
    public static void WriteWeights(ModelConfig cfg, HuggingFaceTensorSource tensors, ParameterWriter into)
    {
        string prefix = PrefixOf(tensors);
        bool withMlm = HasMlmHead(tensors);
        foreach (var stored in Map(cfg, prefix, withMlm, tensors.Contains)) stored.ReadInto(tensors, into);
        tensors.CheckAllUsed(cfg.ModelName, name =>
        {
            string bare = name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name;
            return bare == "embeddings.position_ids" || bare.StartsWith("pooler.", StringComparison.Ordinal) ||
                bare.StartsWith("cls.seq_relationship.", StringComparison.Ordinal) || bare == "cls.predictions.decoder.bias";
        });
    }

    /// <summary>
    /// The weight map (the class remarks as data): every BERT tensor under <paramref name="prefix"/> (the <c>cls.</c>
    /// head never has it) and the parameter view it fills. nn.Linear stores [out, in], so its weights are our W transposed.
    /// </summary>
    /// <param name="stored">whether the checkpoint has a tensor: picks cls.predictions.bias or decoder.bias, and a stored decoder or the tied W_Eᵀ</param>
    static IEnumerable<StoredTensor> Map(ModelConfig cfg, string prefix, bool withMlm, Func<string, bool> stored)
    {
        long h = cfg.NHeads, dh = cfg.DHead, d = cfg.DModel, mlp = cfg.DMlp, vocab = cfg.DVocab;
        static Tensor HeadRows(Tensor W) => W.transpose(1, 2);                  // [head, d_model, d_head] → [head, d_head, d_model]: head i is rows i·d_head …
        static Tensor Flat(Tensor b) => b.view(-1);                             // [head, d_head] → [head·d_head]
        Tensor HeadColumns(Tensor W) => W.permute(2, 0, 1).view(d, h * dh);     // [head, d_head, d_model] → [d_model, head·d_head]
        bool tied = withMlm && !stored(Decoder);
        string e = $"{prefix}embeddings";
        yield return new($"{e}.word_embeddings.weight", [vocab, d], StoredPart.Embedding("embed.embed.W_E", tiedToUnembed: tied));
        yield return new($"{e}.position_embeddings.weight", [cfg.NCtx, d], new StoredPart("embed.pos_embed.W_pos", AsIs));
        yield return new($"{e}.token_type_embeddings.weight", [TokenTypeEmbed.TokenTypes, d], new StoredPart("embed.token_type_embed.W_token_type", AsIs));
        foreach (var norm in StoredTensor.LayerNorm($"{e}.LayerNorm", "embed.ln", d)) yield return norm;
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"{prefix}encoder.layer.{l}", b = $"blocks.{l}";
            foreach (var (proj, qkv) in new[] { ("query", "Q"), ("key", "K"), ("value", "V") })
            {
                yield return new($"{p}.attention.self.{proj}.weight", [h * dh, d], new StoredPart($"{b}.attn.W_{qkv}", HeadRows));
                yield return new($"{p}.attention.self.{proj}.bias", [h * dh], new StoredPart($"{b}.attn.b_{qkv}", Flat));
            }
            yield return new($"{p}.attention.output.dense.weight", [d, h * dh], new StoredPart($"{b}.attn.W_O", HeadColumns));
            yield return new($"{p}.attention.output.dense.bias", [d], new StoredPart($"{b}.attn.b_O", AsIs));
            foreach (var norm in StoredTensor.LayerNorm($"{p}.attention.output.LayerNorm", $"{b}.ln1", d)) yield return norm; // after attention: BERT is post-norm
            yield return new($"{p}.intermediate.dense.weight", [mlp, d], new StoredPart($"{b}.mlp.W_in", Transposed));
            yield return new($"{p}.intermediate.dense.bias", [mlp], new StoredPart($"{b}.mlp.b_in", AsIs));
            yield return new($"{p}.output.dense.weight", [d, mlp], new StoredPart($"{b}.mlp.W_out", Transposed));
            yield return new($"{p}.output.dense.bias", [d], new StoredPart($"{b}.mlp.b_out", AsIs));
            foreach (var norm in StoredTensor.LayerNorm($"{p}.output.LayerNorm", $"{b}.ln2", d)) yield return norm;
        }
        if (!withMlm) yield break;
        yield return new("cls.predictions.transform.dense.weight", [d, d], new StoredPart("mlm_head.W", Transposed));
        yield return new("cls.predictions.transform.dense.bias", [d], new StoredPart("mlm_head.b", AsIs));
        foreach (var norm in StoredTensor.LayerNorm("cls.predictions.transform.LayerNorm", "mlm_head.ln", d)) yield return norm;
        // Newer checkpoints store the output bias as cls.predictions.bias, some only as decoder.bias.
        yield return new(stored("cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias", [vocab], new StoredPart("unembed.b_U", AsIs));
        if (!tied) yield return new(Decoder, [vocab, d], new StoredPart("unembed.W_U", Transposed)); // [d_vocab, d_model] = W_Uᵀ
    }
}
