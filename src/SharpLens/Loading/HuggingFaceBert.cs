using System.Runtime.InteropServices;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using TorchSharp;
using static TorchSharp.torch;

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

    /// <summary>One HF weight: its bare name, the parameter it becomes, and how its HF layout turns into ours.</summary>
    sealed record Weight(string Name, Func<HookedEncoder, Tensor> Parameter, Func<Tensor, Tensor> ToOurs);

    /// <summary>Reads a BERT config.json; unsupported variants throw <see cref="CheckpointException"/>.</summary>
    public static ModelConfig ReadConfig(string configPath)
    {
        var json = HuggingFaceConfigJson.ReadFile(configPath);
        return json.Checked(() => ReadConfig(json));
    }

    static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        string configPath = json.Source;
        CheckpointException Bad(string problem) => json.Problem(problem);
        T? Get<T>(string key) => json.Get<T>(key);
        int Required(string key) => json.Int(key);

        string? modelType = Get<string>("model_type");
        if (modelType is not null and not "bert")
            throw Bad($"model_type is \"{modelType}\"; this reader handles BERT (model_type \"bert\") only.");
        if ((Get<int?>("type_vocab_size") ?? 2) != TokenTypeEmbed.TokenTypes)
            throw Bad($"type_vocab_size is {Get<int?>("type_vocab_size")}; HookedEncoder has exactly {TokenTypeEmbed.TokenTypes} token types.");
        if ((Get<string>("position_embedding_type") ?? "absolute") != "absolute")
            throw Bad($"position_embedding_type is \"{Get<string>("position_embedding_type")}\"; only absolute (learned) positions are supported.");
        int dModel = Required("hidden_size"), nHeads = Required("num_attention_heads");
        if (dModel % nHeads != 0) throw Bad($"hidden_size = {dModel} is not divisible by num_attention_heads = {nHeads}.");
        Activation actFn = json.Activation("hidden_act", "gelu");

        return new ModelConfig
        {
            DModel = dModel,
            NLayers = Required("num_hidden_layers"),
            NHeads = nHeads,
            DHead = dModel / nHeads,
            DMlp = Required("intermediate_size"),
            DVocab = Required("vocab_size"),
            NCtx = Get<int?>("max_position_embeddings") ?? 512,
            ActFn = actFn,
            Eps = Get<double?>("layer_norm_eps") ?? 1e-12,
            TiedEmbeddings = Get<bool?>("tie_word_embeddings") ?? true,
            ModelName = Path.GetFileName(Path.GetDirectoryName(configPath)) ?? "bert",
        }.Validated();
    }

    /// <summary>
    /// Loads config.json and the safetensors weights of a BERT folder (BertModel or BertForMaskedLM). The masked-LM
    /// head is built when the checkpoint has one.
    /// </summary>
    public static HookedEncoder Load(string folder, ModelOptions? options = null)
    {
        folder = Path.GetFullPath(folder);
        var config = ReadConfig(Path.Combine(folder, ConfigFile));
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        ModelSizeCheck.AgainstWeights(config, checkpoint.StoredElements, Path.Combine(folder, ConfigFile), checkpoint.Source, HuggingFaceConfigJson.ReadFile(Path.Combine(folder, ConfigFile)));
        string prefix = checkpoint.Contains(Prefix + "embeddings.word_embeddings.weight") ? Prefix : "";
        string Stored(string name) => name.StartsWith("cls.", StringComparison.Ordinal) ? name : prefix + name;
        var bare = checkpoint.Names.Select(n => n.StartsWith(prefix, StringComparison.Ordinal) ? n[prefix.Length..] : n).ToHashSet(StringComparer.Ordinal);
        return FromWeights(config, bare, name => checkpoint.Read(Stored(name)), name => checkpoint.FileOf(Stored(name)), checkpoint.Source, options);
    }

    /// <summary>
    /// Builds an encoder from weights named and laid out as HF's BertModel / BertForMaskedLM (bare names, no
    /// <c>bert.</c>): the one mapping shared by every source (safetensors folders, ONNX exports).
    /// </summary>
    /// <param name="names">Every weight name the source holds.</param>
    /// <param name="read">Reads one weight in HF layout.</param>
    /// <param name="fileOf">Where a weight lives, for error messages.</param>
    internal static HookedEncoder FromWeights(ModelConfig config, IReadOnlySet<string> names, Func<string, Tensor> read,
        Func<string, string> fileOf, string source, ModelOptions? options)
    {
        bool withMlm = names.Contains(MlmProbe);
        var weights = Weights(config, withMlm, names).ToList();
        var expected = weights.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in expected.Where(n => !names.Contains(n)))
            throw new CheckpointException(source, name, "the checkpoint lacks this weight, which a BERT with this config needs; is the download complete?");
        foreach (var name in names.Where(n => !expected.Contains(n) && !Skipped(n)).Order(StringComparer.Ordinal))
            throw new CheckpointException(fileOf(name), name, "BERT has no such weight; is this checkpoint another architecture, or do num_hidden_layers and the names disagree?");

        var model = HookedEncoder.Uninitialized(config, withMlm, options);
        try
        {
            using var _ = torch.no_grad();
            foreach (var w in weights)
            {
                using var scope = torch.NewDisposeScope();
                var parameter = w.Parameter(model);
                var hf = read(w.Name);
                Tensor ours;
                try { ours = w.ToOurs(hf); }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException or ExternalException)
                { throw ShapeMismatch(fileOf(w.Name), w.Name, hf, parameter); }
                if (!ours.shape.SequenceEqual(parameter.shape)) throw ShapeMismatch(fileOf(w.Name), w.Name, hf, parameter);
                parameter.copy_(ours);
            }
            if (withMlm && !names.Contains("cls.predictions.decoder.weight")) model.unembed!.W_U.copy_(model.embed.embed.W_E.t());
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static CheckpointException ShapeMismatch(string file, string name, Tensor hf, Tensor parameter) =>
        new(file, name, $"shape {ShapeText.Of(hf.shape)} does not fit the parameter {ShapeText.Of(parameter.shape)} that config.json implies.");

    static bool Skipped(string name) =>
        name == "embeddings.position_ids" || name.StartsWith("pooler.", StringComparison.Ordinal) ||
        name.StartsWith("cls.seq_relationship.", StringComparison.Ordinal) || name == "cls.predictions.decoder.bias";

    static IEnumerable<Weight> Weights(ModelConfig cfg, bool withMlm, IReadOnlySet<string> names)
    {
        int h = cfg.NHeads, dh = cfg.DHead, d = cfg.DModel;
        Tensor Same(Tensor t) => t;
        Tensor T(Tensor t) => t.t();
        Tensor HeadsIn(Tensor t) => t.t().reshape(d, h, dh).permute(1, 0, 2); // [out, in] → [head, d_model, d_head]
        Tensor HeadBias(Tensor t) => t.reshape(h, dh);                          // [head, d_head]
        Tensor HeadsOut(Tensor t) => t.t().reshape(h, dh, d);                   // [d_model, head·d_head] → [head, d_head, d_model]

        yield return new("embeddings.word_embeddings.weight", m => m.embed.embed.W_E, Same);
        yield return new("embeddings.position_embeddings.weight", m => m.embed.pos_embed.W_pos, Same);
        yield return new("embeddings.token_type_embeddings.weight", m => m.embed.token_type_embed.W_token_type, Same);
        yield return new("embeddings.LayerNorm.weight", m => m.embed.ln.w!, Same);
        yield return new("embeddings.LayerNorm.bias", m => m.embed.ln.b!, Same);
        for (int l = 0; l < cfg.NLayers; l++)
        {
            int layer = l;
            string p = $"encoder.layer.{l}.";
            BertBlock B(HookedEncoder m) => m.blocks[layer];
            yield return new(p + "attention.self.query.weight", m => B(m).attn.W_Q, HeadsIn);
            yield return new(p + "attention.self.query.bias", m => B(m).attn.b_Q, HeadBias);
            yield return new(p + "attention.self.key.weight", m => B(m).attn.W_K, HeadsIn);
            yield return new(p + "attention.self.key.bias", m => B(m).attn.b_K, HeadBias);
            yield return new(p + "attention.self.value.weight", m => B(m).attn.W_V, HeadsIn);
            yield return new(p + "attention.self.value.bias", m => B(m).attn.b_V, HeadBias);
            yield return new(p + "attention.output.dense.weight", m => B(m).attn.W_O, HeadsOut);
            yield return new(p + "attention.output.dense.bias", m => B(m).attn.b_O, Same);
            yield return new(p + "attention.output.LayerNorm.weight", m => B(m).ln1.w!, Same);
            yield return new(p + "attention.output.LayerNorm.bias", m => B(m).ln1.b!, Same);
            yield return new(p + "intermediate.dense.weight", m => B(m).mlp.W_in, T);
            yield return new(p + "intermediate.dense.bias", m => B(m).mlp.b_in, Same);
            yield return new(p + "output.dense.weight", m => B(m).mlp.W_out, T);
            yield return new(p + "output.dense.bias", m => B(m).mlp.b_out, Same);
            yield return new(p + "output.LayerNorm.weight", m => B(m).ln2.w!, Same);
            yield return new(p + "output.LayerNorm.bias", m => B(m).ln2.b!, Same);
        }
        if (!withMlm) yield break;
        yield return new("cls.predictions.transform.dense.weight", m => m.mlm_head!.W, T);
        yield return new("cls.predictions.transform.dense.bias", m => m.mlm_head!.b, Same);
        yield return new("cls.predictions.transform.LayerNorm.weight", m => m.mlm_head!.ln.w!, Same);
        yield return new("cls.predictions.transform.LayerNorm.bias", m => m.mlm_head!.ln.b!, Same);
        // Newer checkpoints store the output bias as cls.predictions.bias, some only as decoder.bias.
        yield return new(names.Contains("cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias", m => m.unembed!.b_U, Same);
        if (names.Contains("cls.predictions.decoder.weight"))
            yield return new("cls.predictions.decoder.weight", m => m.unembed!.W_U, T);
    }
}
