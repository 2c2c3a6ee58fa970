using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Models;
using SharpLens.Models.Components;
using TorchSharp;
using static TorchSharp.torch;
using static SharpLens.Loading.StoredPart;

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

    public static readonly HuggingFaceFamily Family = new("gpt2", ReadConfig, WriteWeights);

    /// <summary>Reads a GPT-2 config.json into a <see cref="ModelConfig"/>; unsupported variants throw <see cref="CheckpointException"/>.</summary>
    public static ModelConfig ReadConfig(string configPath)
    {
        var json = HuggingFaceConfigJson.ReadFile(configPath);
        return json.Checked(() => ReadConfig(json));
    }

    public static ModelConfig ReadConfig(HuggingFaceConfigJson json)
    {
        json.ExpectModelType("gpt2", "GPT-2");
        if (json.Get<bool?>("scale_attn_weights") == false || json.Get<bool?>("scale_attn_by_inverse_layer_idx") == true)
            throw json.Problem("scale_attn_weights = false or scale_attn_by_inverse_layer_idx = true change the attention scale, which HookedTransformer does not support.");
        // Read, and left alone: upcasting attention to float32 changes only half-precision rounding; the summary_* fields
        // configure GPT2DoubleHeadsModel's classification head, which a language model does not have.
        json.Get<bool?>("reorder_and_upcast_attn");
        foreach (var key in new[] { "summary_activation", "summary_type", "summary_use_proj", "summary_proj_to_labels", "summary_first_dropout" }) json.Raw(key);
        var (dModel, nHeads) = json.Heads("n_embd", "n_head");
        Activation act = json.Activation("activation_function", "gelu_new");
        return new ModelConfig
        {
            DModel = dModel,
            NLayers = json.Int("n_layer"),
            NHeads = nHeads,
            DHead = dModel / nHeads,
            DMlp = json.Get<int?>("n_inner") ?? 4 * dModel,
            DVocab = json.Int("vocab_size"),
            NCtx = json.Get<int?>("n_positions") ?? json.Get<int?>("n_ctx") ?? json.Int("n_positions"),
            ActFn = act,
            Eps = json.Double("layer_norm_epsilon", 1e-5),
            TiedEmbeddings = json.Bool("tie_word_embeddings", true),
            BosTokenId = json.Get<int?>("bos_token_id") ?? 50256,
            TokenizerName = json.Get<int?>("vocab_size") == 50257 ? "gpt2" : null,
            ModelName = HuggingFaceLlama.ModelNameOf(json),
        }.Validated();
    }

    /// <summary>
    /// The GPT-2 tensors written into the model: the weight map read forwards, each stored tensor copied from the file
    /// into views of its parameters (c_attn's columns through a buffer of a megabyte), so no full-size temporary is made.
    /// </summary>
    public static void WriteWeights(ModelConfig cfg, HuggingFaceConfigJson json, HuggingFaceTensorSource tensors, ParameterWriter into)
    {
        string prefix = tensors.Contains(Prefix + "wte.weight") ? Prefix : "";
        if (cfg.TiedEmbeddings) tensors.Skip(LmHead);
        foreach (var stored in Map(cfg, prefix, cfg.TiedEmbeddings)) stored.ReadInto(tensors, into);
        into.Zero("unembed.b_U"); // GPT-2's lm_head has no bias
        tensors.CheckAllUsed(cfg.ModelName, n => n.EndsWith(".attn.bias", StringComparison.Ordinal) || n.EndsWith(".attn.masked_bias", StringComparison.Ordinal));
    }

    /// <summary>
    /// Writes config.json and model.safetensors (names under <c>transformer.</c>, as GPT2LMHeadModel.save_pretrained
    /// does) so the folder loads back here and in Python: the weight map read backwards. lm_head.weight is left out
    /// when the config ties the embeddings and W_U still equals W_Eᵀ. Only GPT-2-shaped models can be saved this way.
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
        var map = Map(cfg, Prefix, tied).ToList();
        var dtype = model.embed.W_E.dtype;
        var specs = map.Select(t => new SafeTensorSpec(t.Name, dtype, t.Shape)).ToList();
        var byName = map.ToDictionary(t => t.Name);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter, StringComparer.Ordinal);

        // Both files go to temporaries first; they replace the old ones only once both are complete.
        using var outputs = IO.AtomicFile.Together();
        outputs.Stage(Path.Combine(folder, ConfigFile), stream => stream.Write(System.Text.Encoding.UTF8.GetBytes(ConfigJson(cfg, tied, dtype))));
        using (torch.no_grad())
            outputs.StageVia(Path.Combine(folder, SafeTensorsCheckpoint.SingleFile), temporary => SafeTensorsWriter.Write(temporary, specs, name => byName[name].Assemble(p => parameters[p])));
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
            throw new SharpLensArgumentException(nameof(model), $"{cfg.ModelName} cannot be saved in the Hugging Face GPT-2 layout: {string.Join("; ", problems)}. " +
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
            _ => throw new SharpLensInternalException($"{cfg.ActFn} has no case here."),
        },
        ["layer_norm_epsilon"] = cfg.Eps,
        ["tie_word_embeddings"] = tied,
        ["bos_token_id"] = cfg.BosTokenId ?? 50256,
        ["eos_token_id"] = cfg.BosTokenId ?? 50256,
        ["torch_dtype"] = dtype switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" },
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    const string LmHead = "lm_head.weight";

    /// <summary>
    /// The weight map, used both ways: every GPT-2 tensor for this config in the order GPT2LMHeadModel lists them, under
    /// <paramref name="prefix"/> (lm_head sits beside the transformer, never under it), and the parameter views it holds.
    /// Conv1D stores x W + b as [in, out], our layout, so most views are the parameter itself.
    /// </summary>
    /// <param name="tied">wte.weight also fills W_U (as W_Uᵀ) and no lm_head.weight is listed</param>
    static IEnumerable<StoredTensor> Map(ModelConfig cfg, string prefix, bool tied)
    {
        long d = cfg.DModel, h = cfg.NHeads, dh = cfg.DHead, mlp = cfg.DMlp, vocab = cfg.DVocab;
        static Tensor HeadsAsColumns(Tensor W) => W.permute(1, 0, 2); // [head, d_model, d_head] → [d_model, head, d_head]
        Tensor OutputRows(Tensor W) => W.view(h * dh, d);             // [head, d_head, d_model] → [head·d_head, d_model]
        yield return new($"{prefix}wte.weight", [vocab, d], StoredPart.Embedding("embed.W_E", tiedToUnembed: tied));
        yield return new($"{prefix}wpe.weight", [cfg.NCtx, d], new StoredPart("pos_embed.W_pos", AsIs));
        for (int l = 0; l < cfg.NLayers; l++)
        {
            string p = $"{prefix}h.{l}", b = $"blocks.{l}";
            foreach (var norm in StoredTensor.LayerNorm($"{p}.ln_1", $"{b}.ln1", d)) yield return norm;
            // c_attn [d_model, 3·d_model] = [W_Q | W_K | W_V], each column block [d_model, head·d_head]; its bias likewise.
            yield return new($"{p}.attn.c_attn.weight", [d, 3 * d],
                new StoredPart($"{b}.attn.W_Q", HeadsAsColumns, 0), new StoredPart($"{b}.attn.W_K", HeadsAsColumns, d), new StoredPart($"{b}.attn.W_V", HeadsAsColumns, 2 * d));
            yield return new($"{p}.attn.c_attn.bias", [3 * d],
                new StoredPart($"{b}.attn.b_Q", AsIs, 0), new StoredPart($"{b}.attn.b_K", AsIs, d), new StoredPart($"{b}.attn.b_V", AsIs, 2 * d)); // [head, d_head] each
            yield return new($"{p}.attn.c_proj.weight", [d, d], new StoredPart($"{b}.attn.W_O", OutputRows));
            yield return new($"{p}.attn.c_proj.bias", [d], new StoredPart($"{b}.attn.b_O", AsIs));
            foreach (var norm in StoredTensor.LayerNorm($"{p}.ln_2", $"{b}.ln2", d)) yield return norm;
            yield return new($"{p}.mlp.c_fc.weight", [d, mlp], new StoredPart($"{b}.mlp.W_in", AsIs));
            yield return new($"{p}.mlp.c_fc.bias", [mlp], new StoredPart($"{b}.mlp.b_in", AsIs));
            yield return new($"{p}.mlp.c_proj.weight", [mlp, d], new StoredPart($"{b}.mlp.W_out", AsIs));
            yield return new($"{p}.mlp.c_proj.bias", [d], new StoredPart($"{b}.mlp.b_out", AsIs));
        }
        foreach (var norm in StoredTensor.LayerNorm($"{prefix}ln_f", "ln_final", d)) yield return norm;
        if (!tied) yield return new(LmHead, [vocab, d], new StoredPart("unembed.W_U", Transposed)); // [d_vocab, d_model] = W_Uᵀ
    }
}
