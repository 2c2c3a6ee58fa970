using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Models;
using SharpLens.Models.Components;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Loading;

/// <summary>
/// The Hugging Face GPT-2 family: how its config.json reads as a <see cref="ModelConfig"/>, and how its weight
/// names and layouts map onto HookedTransformer's per-head parameters. No model code lives here.
/// </summary>
/// <remarks>
/// HF GPT-2 stores linear layers as Conv1D, [in, out], applied as x W + b, so most weights are ours unchanged:
/// <code>
/// wte.weight [d_vocab, d_model]           = embed.W_E              wpe.weight [n_ctx, d_model] = pos_embed.W_pos
/// h.l.ln_1.weight/bias                    = blocks.l.ln1.w/b       h.l.ln_2.*  = blocks.l.ln2.*, ln_f.* = ln_final.*
/// h.l.attn.c_attn.weight [d_model, 3·d_model] = [W_Q | W_K | W_V], each column block [d_model, head·d_head]
///                                           → W_Q [n_heads, d_model, d_head]; c_attn.bias [3·d_model] likewise
/// h.l.attn.c_proj.weight [d_model, d_model] = W_O viewed as [head·d_head, d_model]; c_proj.bias = b_O
/// h.l.mlp.c_fc.weight [d_model, d_mlp]    = W_in,  h.l.mlp.c_proj.weight [d_mlp, d_model] = W_out
/// lm_head.weight [d_vocab, d_model]        = W_Uᵀ, absent when tie_word_embeddings (then W_U = W_Eᵀ); no b_U
/// </code>
/// Names appear bare (GPT2Model) or under <c>transformer.</c> (GPT2LMHeadModel); <c>h.l.attn.bias</c> and
/// <c>h.l.attn.masked_bias</c> are causal-mask buffers in old files, not parameters, and are skipped.
/// </remarks>
public static class HuggingFaceGpt2
{
    public const string ConfigFile = "config.json";
    const string Prefix = "transformer.";

    /// <summary>One HF tensor: its bare name, its shape, and the model tensor(s) it becomes.</summary>
    /// <param name="Hf">The model's weights in HF layout: a view into the parameters when <paramref name="Assign"/> is null
    /// (loading then writes through it), otherwise a fresh tensor built from them.</param>
    /// <param name="Assign">For weights that split across parameters (c_attn): writes the HF tensor into them.</param>
    sealed record Weight(string Name, long[] Shape, Func<HookedTransformer, Tensor> Hf, Action<HookedTransformer, Tensor>? Assign = null);

    /// <summary>Reads a GPT-2 config.json into a <see cref="ModelConfig"/>; unsupported variants throw <see cref="CheckpointException"/>.</summary>
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
        int Required(string key, string? alternative = null) =>
            json.Get<int?>(key) ?? (alternative is null ? json.Int(key) : json.Get<int?>(alternative) ?? json.Int(key));

        string? modelType = Get<string>("model_type");
        if (modelType is not null and not "gpt2")
            throw Bad($"model_type is \"{modelType}\"; this reader handles GPT-2 (model_type \"gpt2\") only.");
        if (Get<bool?>("scale_attn_weights") == false || Get<bool?>("scale_attn_by_inverse_layer_idx") == true)
            throw Bad("scale_attn_weights = false or scale_attn_by_inverse_layer_idx = true change the attention scale, which HookedTransformer does not support.");

        int dModel = Required("n_embd"), nHeads = Required("n_head");
        if (dModel % nHeads != 0) throw Bad($"n_embd = {dModel} is not divisible by n_head = {nHeads}.");
        Activation actFn = json.Activation("activation_function", "gelu_new");

        return new ModelConfig
        {
            DModel = dModel,
            NLayers = Required("n_layer"),
            NHeads = nHeads,
            DHead = dModel / nHeads,
            DMlp = Get<int?>("n_inner") ?? 4 * dModel,
            DVocab = Required("vocab_size"),
            NCtx = Required("n_positions", alternative: "n_ctx"),
            ActFn = actFn,
            Eps = Get<double?>("layer_norm_epsilon") ?? 1e-5,
            TiedEmbeddings = Get<bool?>("tie_word_embeddings") ?? true,
            BosTokenId = Get<int?>("bos_token_id") ?? 50256,
            TokenizerName = Get<int?>("vocab_size") == 50257 ? "gpt2" : null,
            ModelName = Path.GetFileName(Path.GetDirectoryName(configPath)) ?? "gpt2",
        }.Validated();
    }

    /// <summary>
    /// Loads config.json and the safetensors weights of a GPT-2 folder, weights unprocessed. Each weight is copied
    /// from the mapped file straight into its parameter (through a few-MB staging buffer when it must be
    /// transposed or converted), so loading needs little more memory than the model itself.
    /// </summary>
    public static HookedTransformer Load(string folder, ModelOptions? options = null)
    {
        folder = Path.GetFullPath(folder);
        var config = ReadConfig(Path.Combine(folder, ConfigFile));
        using var checkpoint = SafeTensorsCheckpoint.Open(folder);
        ModelSizeCheck.AgainstWeights(config, checkpoint.StoredElements, Path.Combine(folder, ConfigFile), checkpoint.Source, HuggingFaceConfigJson.ReadFile(Path.Combine(folder, ConfigFile)));
        string prefix = checkpoint.Contains(Prefix + "wte.weight") ? Prefix : "";
        var weights = Weights(config, includeLmHead: !config.TiedEmbeddings).ToList();
        CheckNames(checkpoint, weights, prefix);
        foreach (var w in weights)
        {
            var info = checkpoint.Info(Stored(w, prefix));
            if (!info.Shape.SequenceEqual(w.Shape))
                throw new CheckpointException(checkpoint.FileOf(info.Name), info.Name,
                    $"shape {ShapeText.Of(info.Shape)} does not match config.json, which implies {ShapeText.Of(w.Shape)}.");
        }

        var model = HookedTransformer.Uninitialized(config, options); // every weight is read below
        try
        {
            using var _ = torch.no_grad();
            foreach (var w in weights)
            {
                using var scope = torch.NewDisposeScope();
                if (w.Assign is null) checkpoint.ReadInto(Stored(w, prefix), w.Hf(model));
                else w.Assign(model, checkpoint.Read(Stored(w, prefix)));
            }
            if (config.TiedEmbeddings) model.unembed.W_U.copy_(model.embed.W_E.t());
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    static void CheckNames(SafeTensorsCheckpoint checkpoint, List<Weight> weights, string prefix)
    {
        var expected = weights.Select(w => Stored(w, prefix)).ToHashSet(StringComparer.Ordinal);
        foreach (var name in expected.Where(n => !checkpoint.Contains(n)))
            throw new CheckpointException(checkpoint.Source, name, "the checkpoint lacks this weight, which a GPT-2 with this config.json needs" +
                (name == "lm_head.weight" ? " (tie_word_embeddings is false, so lm_head.weight must be stored)" : "") + "; is the download complete?");
        bool Skipped(string name) =>
            name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal) || name == "lm_head.weight";
        foreach (var name in checkpoint.Names.Where(n => !expected.Contains(n) && !Skipped(n)).Order(StringComparer.Ordinal))
            throw new CheckpointException(checkpoint.FileOf(name), name, "GPT-2 has no such weight; is this checkpoint another architecture, or do n_layer and the names disagree?");
    }

    /// <summary>
    /// Writes config.json and model.safetensors (names under <c>transformer.</c>, as GPT2LMHeadModel.save_pretrained
    /// does) so the folder loads back here and in Python. lm_head.weight is left out when the config ties the
    /// embeddings and W_U still equals W_Eᵀ. Only GPT-2-shaped models can be saved this way.
    /// </summary>
    public static void Save(HookedTransformer model, string folder)
    {
        var cfg = model.Config;
        CheckExpressible(model);
        bool tied;
        using (torch.NewDisposeScope())
        using (torch.no_grad()) tied = cfg.TiedEmbeddings && model.unembed.W_U.eq(model.embed.W_E.t()).all().item<bool>();

        folder = Path.GetFullPath(folder);
        Directory.CreateDirectory(folder);
        var weights = Weights(cfg, includeLmHead: !tied).ToList();
        var dtype = model.embed.W_E.dtype;
        var specs = weights.Select(w => new SafeTensorSpec(Stored(w, Prefix), dtype, w.Shape)).ToList();
        var byName = weights.ToDictionary(w => Stored(w, Prefix));

        // Both files go to temporaries first; they replace the old ones only once both are complete.
        using var outputs = IO.AtomicFile.Together();
        outputs.Stage(Path.Combine(folder, ConfigFile), stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(ConfigJson(cfg, tied, dtype))));
        using (torch.no_grad())
            outputs.StageVia(Path.Combine(folder, SafeTensorsCheckpoint.SingleFile), temporary => SafeTensorsWriter.Write(temporary, specs, name => byName[name].Hf(model)));
        outputs.Commit();
    }

    static void CheckExpressible(HookedTransformer model)
    {
        var cfg = model.Config;
        var problems = new List<string>();
        if (cfg.NormalizationType != Normalization.LN || cfg.FinalNormalization != Normalization.LN)
            problems.Add($"normalization is {cfg.NormalizationType}/{cfg.FinalNormalization} (GPT-2 has LayerNorm with weight and bias; save before folding weights)");
        if (cfg.PositionalEmbeddingType != PositionalEmbedding.Learned) problems.Add($"positional embedding is {cfg.PositionalEmbeddingType} (GPT-2 learns one per position)");
        if (cfg.AttnOnly) problems.Add("the model is attention-only (GPT-2 has an MLP in every block)");
        if (cfg.NHeads * cfg.DHead != cfg.DModel) problems.Add($"n_heads × d_head = {cfg.NHeads * cfg.DHead} differs from d_model = {cfg.DModel}");
        if (problems.Count == 0)
            using (torch.NewDisposeScope())
            using (torch.no_grad())
                if (model.unembed.b_U.count_nonzero().item<long>() != 0) problems.Add("unembed.b_U is not zero (GPT-2's lm_head has no bias)");
        if (problems.Count > 0)
            throw new NotSupportedException($"{cfg.ModelName} cannot be saved in the Hugging Face GPT-2 layout: {string.Join("; ", problems)}. " +
                "Save its state dict with SafeTensorsWriter instead.");
    }

    static string ConfigJson(ModelConfig cfg, bool tied, ScalarType dtype) => new JsonObject
    {
        ["architectures"] = new JsonArray("GPT2LMHeadModel"),
        ["model_type"] = "gpt2",
        ["n_embd"] = cfg.DModel,
        ["n_layer"] = cfg.NLayers,
        ["n_head"] = cfg.NHeads,
        ["n_inner"] = cfg.DMlp,
        ["n_positions"] = cfg.NCtx,
        ["n_ctx"] = cfg.NCtx,
        ["vocab_size"] = cfg.DVocab,
        ["activation_function"] = cfg.ActFn switch
        {
            Activation.Relu => "relu", Activation.Gelu => "gelu", Activation.GeluNew => "gelu_new", Activation.Silu => "silu",
            _ => throw new NotSupportedException(cfg.ActFn.ToString()),
        },
        ["layer_norm_epsilon"] = cfg.Eps,
        ["tie_word_embeddings"] = tied,
        ["bos_token_id"] = cfg.BosTokenId ?? 50256,
        ["eos_token_id"] = cfg.BosTokenId ?? 50256,
        ["torch_dtype"] = dtype switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" },
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    /// <summary>The weight-name map: every GPT-2 tensor for this config, in the order GPT2LMHeadModel lists them.</summary>
    static IEnumerable<Weight> Weights(ModelConfig cfg, bool includeLmHead)
    {
        long d = cfg.DModel, h = cfg.NHeads, dh = cfg.DHead, mlp = cfg.DMlp, vocab = cfg.DVocab;
        yield return new("wte.weight", [vocab, d], m => m.embed.W_E);
        yield return new("wpe.weight", [cfg.NCtx, d], m => m.pos_embed!.W_pos);
        for (int l = 0; l < cfg.NLayers; l++)
        {
            int layer = l;
            Func<HookedTransformer, TransformerBlock> Block = m => m.blocks[layer];
            yield return new($"h.{l}.ln_1.weight", [d], m => Block(m).ln1.w!);
            yield return new($"h.{l}.ln_1.bias", [d], m => Block(m).ln1.b!);
            yield return new($"h.{l}.attn.c_attn.weight", [d, 3 * d],
                m => torch.cat([.. QKV(m, layer).Select(W => W.permute(1, 0, 2).reshape(d, h * dh))], 1), // [d_model, 3·head·d_head]
                (m, hf) =>
                {
                    var parts = hf.view(d, 3, h, dh).permute(1, 2, 0, 3); // [3, head, d_model, d_head]
                    foreach (var (W, i) in QKV(m, layer).Select((W, i) => (W, i))) W.copy_(parts[i]);
                });
            yield return new($"h.{l}.attn.c_attn.bias", [3 * d],
                m => torch.cat([.. QKVBias(m, layer).Select(b => b.reshape(h * dh))]),
                (m, hf) =>
                {
                    var parts = hf.view(3, h, dh); // [3, head, d_head]
                    foreach (var (b, i) in QKVBias(m, layer).Select((b, i) => (b, i))) b.copy_(parts[i]);
                });
            yield return new($"h.{l}.attn.c_proj.weight", [d, d], m => Block(m).attn.W_O.view(h * dh, d));
            yield return new($"h.{l}.attn.c_proj.bias", [d], m => Block(m).attn.b_O);
            yield return new($"h.{l}.ln_2.weight", [d], m => Block(m).ln2!.w!);
            yield return new($"h.{l}.ln_2.bias", [d], m => Block(m).ln2!.b!);
            yield return new($"h.{l}.mlp.c_fc.weight", [d, mlp], m => Block(m).mlp!.W_in);
            yield return new($"h.{l}.mlp.c_fc.bias", [mlp], m => Block(m).mlp!.b_in);
            yield return new($"h.{l}.mlp.c_proj.weight", [mlp, d], m => Block(m).mlp!.W_out);
            yield return new($"h.{l}.mlp.c_proj.bias", [d], m => Block(m).mlp!.b_out);
        }
        yield return new("ln_f.weight", [d], m => m.ln_final.w!);
        yield return new("ln_f.bias", [d], m => m.ln_final.b!);
        if (includeLmHead) yield return new("lm_head.weight", [vocab, d], m => m.unembed.W_U.t());
    }

    /// <summary>The name in the file: lm_head sits beside the transformer, never under its prefix.</summary>
    static string Stored(Weight w, string prefix) => w.Name == "lm_head.weight" ? w.Name : prefix + w.Name;

    static Tensor[] QKV(HookedTransformer m, int layer) { var a = m.blocks[layer].attn; return [a.W_Q, a.W_K, a.W_V]; }
    static Tensor[] QKVBias(HookedTransformer m, int layer) { var a = m.blocks[layer].attn; return [a.b_Q, a.b_K, a.b_V]; }
}
