using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Attribution;

/// <summary>
/// A model with its MLPs replaced by transcoders, for one prompt at a time (circuit-tracer's local replacement model):
/// attention patterns and every norm's scale are frozen, each MLP output keeps its true value but passes gradient only
/// through the transcoders' linear skip path, <c>y ↦ skip + (y − skip).detach()</c>, and the rest (error nodes) is
/// <c>y − ŷ</c>. With these freezes the map from feature activations, errors and token embeddings to every feature's
/// pre-activation and every logit is linear, so its direct effects are exact.
/// </summary>
/// <remarks>
/// Use the model's unprocessed weights (<see cref="WeightProcessingOptions.None"/>): transcoders are trained on raw
/// activations, as circuit-tracer loads models with fold_ln, center_writing_weights and center_unembed off.
/// Position 0 (BOS) has its transcoder activations and errors set to zero, as circuit-tracer does.
/// </remarks>
public sealed class ReplacementModel
{
    public HookedTransformer Model { get; }
    public TranscoderSet Transcoders { get; }
    /// <summary>The model hook each layer's features read: <c>blocks.{l}.</c> + this.</summary>
    public string InputHookSuffix { get; }
    /// <summary>The model hook each layer's features write to (the MLP output as it enters the residual stream).</summary>
    public string OutputHookSuffix { get; }

    public ReplacementModel(HookedTransformer model, TranscoderSet transcoders)
    {
        var cfg = model.Config;
        if (cfg.AttnOnly) throw new TranscoderMismatchException($"{cfg.ModelName} is attention-only: it has no MLPs for the transcoders in {transcoders.Where} to replace.");
        if (transcoders.NLayers != cfg.NLayers)
            throw new TranscoderMismatchException($"The transcoders in {transcoders.Where} cover {transcoders.NLayers} layers but {cfg.ModelName} has n_layers = {cfg.NLayers}; use the set trained on this model.");
        if (transcoders.DModel != cfg.DModel)
            throw new TranscoderMismatchException($"The transcoders in {transcoders.Where} read vectors of d_model = {transcoders.DModel} but {cfg.ModelName} has d_model = {cfg.DModel}; use the set trained on this model.");
        Model = model;
        Transcoders = transcoders;
        InputHookSuffix = ResolveHook(model, transcoders.FeatureInputHook, input: true, transcoders.Where);
        OutputHookSuffix = ResolveHook(model, transcoders.FeatureOutputHook, input: false, transcoders.Where);
    }

    public int NLayers => Model.Config.NLayers;
    public string InputHook(int layer) => $"blocks.{layer}.{InputHookSuffix}";
    public string OutputHook(int layer) => $"blocks.{layer}.{OutputHookSuffix}";

    /// <summary>TransformerLens hook names, with circuit-tracer's ReplacementMLP names (mlp.hook_in / mlp.hook_out) mapped to the same activations.</summary>
    internal static string ResolveHook(HookedTransformer model, string hook, bool input, string scan)
    {
        var cfg = model.Config;
        string name = hook.StartsWith("blocks.", StringComparison.Ordinal) && hook.IndexOf('.', 7) is int dot and > 7 ? hook[(dot + 1)..] : hook;
        string field = input ? "feature_input_hook" : "feature_output_hook";
        if (name == "mlp.hook_in")
        {
            if (cfg.IsRms) throw new TranscoderMismatchException($"{scan}: {field} '{hook}' (the MLP's input) has no hook point in {cfg.ModelName}: its ln2.hook_normalized comes before the RMSNorm weight. Use ln2.hook_normalized or hook_resid_mid.");
            name = "ln2.hook_normalized";
        }
        if (name == "mlp.hook_out")
        {
            if (cfg.UseNormalizationBeforeAndAfter) throw new TranscoderMismatchException($"{scan}: {field} '{hook}' (the MLP's output before ln2_post) has no hook point in {cfg.ModelName}; use hook_mlp_out.");
            name = "hook_mlp_out";
        }
        if (!input && name != "hook_mlp_out")
            throw new TranscoderMismatchException($"{scan}: {field} is '{hook}'; transcoders must write the MLP output (hook_mlp_out or mlp.hook_out) for the replacement model to replace the MLP.");
        for (int l = 0; l < cfg.NLayers; l++)
            if (!model.HookDict.ContainsKey($"blocks.{l}.{name}"))
            {
                var near = model.HookDict.Keys.Where(k => k.StartsWith($"blocks.{l}.", StringComparison.Ordinal)).Select(k => k[($"blocks.{l}.".Length)..])
                    .OrderBy(k => HookNotFoundException.EditDistance(name, k)).Take(3);
                throw new TranscoderMismatchException($"{scan}: {field} '{hook}' is not a hook point of {cfg.ModelName} (blocks.{l}.{name} does not exist). Closest: {string.Join(", ", near)}.");
            }
        return name;
    }

    /// <summary>
    /// The prompt as circuit-tracer attributes it: a 1-D int64 tensor whose first token is special. If the first token is
    /// not BOS/EOS/PAD, the tokenizer's BOS (else PAD, else EOS; an id of 0 is skipped as circuit-tracer's filter does) is
    /// put first. A model without a tokenizer takes the ids as given (position 0 is still treated as BOS).
    /// </summary>
    public Tensor EnsureTokenized(Tensor tokens)
    {
        var ids = tokens.dim() == 2 && tokens.shape[0] == 1 ? tokens[0] : tokens;
        if (ids.dim() != 1) throw new AttributionArgumentException("tokens", $"one prompt is attributed at a time: give [pos] or [1, pos], not {ShapeText.Of(tokens.shape)}.");
        if (ids.shape[0] == 0) throw new AttributionArgumentException("tokens", "the prompt is empty: give at least one token.");
        ids = ids.to(ScalarType.Int64).cpu();
        var tokenizer = Model.TokenizerIfSet ?? (Model.Config.TokenizerName is not null ? Model.Tokenizer : null);
        if (tokenizer is null) return ids.clone();
        var special = new[] { tokenizer.BosTokenId, tokenizer.EosTokenId, (int?)tokenizer.PadTokenId }.Where(i => i is not null).Select(i => (long)i!.Value).ToHashSet();
        if (special.Contains(ids[0].item<long>())) return ids.clone();
        long? bos = new[] { tokenizer.BosTokenId, (int?)tokenizer.PadTokenId, tokenizer.EosTokenId }.FirstOrDefault(i => i is not null and not 0);
        return bos is long b ? torch.cat([torch.tensor(new[] { b }), ids]) : ids.clone();
    }

    /// <summary>A token's text for graph labels: the tokenizer's decoding of that one id, or the id itself without a tokenizer.</summary>
    public string Decode(long id)
    {
        var tokenizer = Model.TokenizerIfSet ?? (Model.Config.TokenizerName is not null ? Model.Tokenizer : null);
        return tokenizer is null ? id.ToString(System.Globalization.CultureInfo.InvariantCulture) : tokenizer.Decode([(int)id]);
    }

    public string DecodeAll(Tensor ids)
    {
        var tokenizer = Model.TokenizerIfSet ?? (Model.Config.TokenizerName is not null ? Model.Tokenizer : null);
        var list = ids.data<long>().ToArray();
        return tokenizer is null ? string.Join(" ", list) : tokenizer.Decode(list.Select(i => (int)i));
    }

    /// <summary>
    /// Logits [pos, d_vocab] of the replacement model's own forward pass (patterns and scales detached, each MLP output
    /// spliced as skip + (y − skip).detach(), the embedding a gradient leaf): equal to the model's, as the splice
    /// changes gradients, not values.
    /// </summary>
    public Tensor ReplacementLogits(Tensor tokens)
    {
        using var scope = torch.NewDisposeScope();
        var inputs = new Tensor[NLayers];
        HookFunction detach = (a, _) => a.detach();
        var hooks = new List<(string, HookFunction)> { ("hook_embed", (a, _) => a.detach().requires_grad_(true)) };
        foreach (var name in Model.HookDict.Keys)
            if (name.EndsWith(".hook_pattern", StringComparison.Ordinal) || name.EndsWith(".hook_scale", StringComparison.Ordinal)) hooks.Add((name, detach));
        for (int layer = 0; layer < NLayers; layer++)
        {
            int l = layer;
            hooks.Add((InputHook(l), (a, _) => { inputs[l] = a; return null; }));
            hooks.Add((OutputHook(l), (y, _) =>
            {
                var skip = Transcoders.SkipOf(l, inputs[l].to(Transcoders.DType)).to(y.dtype);
                return skip + (y - skip).detach();
            }));
        }
        using var _ = torch.enable_grad();
        return Model.RunWithHooks(tokens.unsqueeze(0), hooks)[0].detach().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// One forward pass of the model on <paramref name="tokens"/> [pos] recording what attribution needs: every layer's
    /// transcoder input x [n_layers, pos, d_model] and true MLP output y, the logits [pos, d_vocab], the activations a
    /// [n_layers, pos, d_transcoder] (position 0 zeroed), reconstructions ŷ and errors y − ŷ (position 0 zeroed).
    /// </summary>
    public PromptState Run(Tensor tokens)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var names = Enumerable.Range(0, NLayers).SelectMany(l => new[] { InputHook(l), OutputHook(l) }).ToList();
        var (logits, cache) = Model.RunWithCache(tokens.unsqueeze(0), names);
        using (cache)
        {
            var dtype = Transcoders.DType;
            var x = torch.stack(Enumerable.Range(0, NLayers).Select(l => cache[InputHook(l)][0])).to(dtype);  // [n_layers, pos, d_model]
            var y = torch.stack(Enumerable.Range(0, NLayers).Select(l => cache[OutputHook(l)][0])).to(dtype); // [n_layers, pos, d_model]
            var pre = torch.stack(Enumerable.Range(0, NLayers).Select(l => Transcoders.PreActivations(l, x[l]))); // [n_layers, pos, d_tc]
            var acts = torch.stack(Enumerable.Range(0, NLayers).Select(l => Transcoders.Activate(l, pre[l])));   // [n_layers, pos, d_tc]
            acts[.., 0] = 0; // BOS: circuit-tracer's zero_positions
            var recon = Transcoders.Decode(acts, x); // [n_layers, pos, d_model]
            var errors = y - recon;
            errors[.., 0] = 0;
            var state = new PromptState(tokens.clone(), logits[0], x, y, pre, acts, recon, errors);
            state.MoveOut();
            return state;
        }
    }
}

/// <summary>What one forward pass of a replacement model records (see <see cref="ReplacementModel.Run"/>); dispose it when done.</summary>
public sealed class PromptState(Tensor tokens, Tensor logits, Tensor inputs, Tensor outputs, Tensor preActivations, Tensor activations,
    Tensor reconstructions, Tensor errors) : IDisposable
{
    public Tensor Tokens { get; } = tokens;                   // [pos] int64
    public Tensor Logits { get; } = logits;                   // [pos, d_vocab]
    public Tensor Inputs { get; } = inputs;                   // [n_layers, pos, d_model] x at feature_input_hook
    public Tensor Outputs { get; } = outputs;                 // [n_layers, pos, d_model] true MLP outputs y
    public Tensor PreActivations { get; } = preActivations;   // [n_layers, pos, d_transcoder]
    public Tensor Activations { get; } = activations;         // [n_layers, pos, d_transcoder], position 0 zeroed
    public Tensor Reconstructions { get; } = reconstructions; // [n_layers, pos, d_model] ŷ
    public Tensor Errors { get; } = errors;                   // [n_layers, pos, d_model] y − ŷ, position 0 zeroed

    internal void MoveOut()
    {
        foreach (var t in All) t.MoveToOuterDisposeScope();
    }

    IEnumerable<Tensor> All => [Tokens, Logits, Inputs, Outputs, PreActivations, Activations, Reconstructions, Errors];

    public void Dispose()
    {
        foreach (var t in All) t.Dispose();
    }
}
