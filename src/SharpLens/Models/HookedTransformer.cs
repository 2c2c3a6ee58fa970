using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using SharpLens.Models.Components;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Models;

/// <summary>
/// A decoder-only transformer whose every activation passes a named hook point, with TransformerLens's names
/// and shapes. <c>Run</c> gives logits, <c>RunWithCache</c> records activations, <c>RunWithHooks</c> reads or
/// replaces them for one call.
/// </summary>
/// <remarks>
/// tokens → embed (+ pos_embed) → blocks[0..n_layers) → ln_final → unembed → logits [batch, pos, d_vocab].
/// </remarks>
public partial class HookedTransformer : HookedRootModule
{
    public Embed embed;
    public PosEmbed? pos_embed;
    public ModuleList<TransformerBlock> blocks;
    public Norm ln_final;
    public Unembed unembed;
    readonly HookPoint hook_embed;
    readonly HookPoint? hook_pos_embed;
    readonly RotaryEmbedding? _rotary, _localRotary;
    readonly HookedTransformer? _shared; // set when this is a second view of another model's modules (see the protected constructor)
    ModelOptions _options;

    public override ModelConfig Config { get; }
    public ModelOptions Options
    {
        get => _shared?.Options ?? _options;
        private set { if (_shared is not null) _shared.Options = value; else _options = value; }
    }

    public override Device Device => embed.W_E.device;

    /// <summary>Builds a model with random weights (normal with std <see cref="ModelConfig.InitRange"/>, biases 0).</summary>
    public HookedTransformer(ModelConfig config, ModelOptions? options = null, long seed = 0) : this(config, options, (long?)seed) { }

    /// <param name="seed">null leaves the weights uninitialised, for loaders that overwrite every one of them.</param>
    HookedTransformer(ModelConfig config, ModelOptions? options, long? seed) : base("HookedTransformer", new HookPointSet())
    {
        TorchNative.EnsureLoaded();
        Config = config.Validated();
        _options = options ?? new ModelOptions();
        var cfg = Config;
        // A loader overwrites every weight: allocate them in the model's dtype, so no float32 copy is ever made.
        using var allocation = seed is null ? ParameterAllocation.In(_options.DType) : null;

        embed = new Embed(cfg);
        hook_embed = HookPoints.Create("hook_embed");
        if (cfg.PositionalEmbeddingType == PositionalEmbedding.Learned)
        {
            pos_embed = new PosEmbed(cfg);
            hook_pos_embed = HookPoints.Create("hook_pos_embed");
        }
        if (cfg.PositionalEmbeddingType == PositionalEmbedding.Rotary)
        {
            _rotary = new RotaryEmbedding(cfg);
            if (cfg.UseLocalAttn && cfg.RotaryBaseLocal is not null)
                _localRotary = new RotaryEmbedding(cfg, local: true);
        }
        blocks = new ModuleList<TransformerBlock>([.. Enumerable.Range(0, cfg.NLayers).Select(l => new TransformerBlock(cfg, l, HookPoints))]);
        ln_final = Norm.Create(cfg, cfg.FinalNormalization, "ln_final", HookPoints);
        unembed = new Unembed(cfg);
        RegisterComponents();

        if (seed is { } s) InitializeWeights(s);
        this.to(Options.DType).to(Options.TorchDevice);
    }

    /// <summary>
    /// A second view of <paramref name="model"/>: the same modules, parameters, hook points, options and tokenizer, so
    /// running either runs both. A subclass that changes what runs through the hook points (an SAE splice) is then itself
    /// the hooked model, as SAELens's HookedSAETransformer is a HookedTransformer.
    /// </summary>
    protected HookedTransformer(HookedTransformer model) : base("HookedTransformer", model.HookPoints)
    {
        _shared = model._shared ?? model;
        Config = model.Config;
        _options = model.Options;
        embed = model.embed;
        pos_embed = model.pos_embed;
        blocks = model.blocks;
        ln_final = model.ln_final;
        unembed = model.unembed;
        hook_embed = model.hook_embed;
        hook_pos_embed = model.hook_pos_embed;
        _rotary = model._rotary;
        _localRotary = model._localRotary;
        RegisterComponents();
    }

    /// <summary>A model whose parameters are allocated but not initialised: every one must be overwritten.</summary>
    internal static HookedTransformer Uninitialized(ModelConfig config, ModelOptions? options) => new(config, options, null);

    void InitializeWeights(long seed)
    {
        using var _ = torch.no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            if (leaf.TrimStart('_').StartsWith("W_", StringComparison.Ordinal)) p.normal_(0, Config.InitRange, generator);
        }
        if (Config.TiedEmbeddings) unembed.W_U.copy_(embed.W_E.t());
    }

    /// <summary>Logits [batch, pos, d_vocab] for token ids [batch, pos] (or [pos]).</summary>
    /// <param name="attentionMask">[batch, pos]: 1 for real tokens, 0 for padding (see <c>ToTokens</c> for batches).</param>
    public override Tensor Run(Tensor tokens, Tensor? attentionMask = null)
    {
        using var scope = torch.NewDisposeScope();
        return Forward(tokens, attentionMask).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Logits [batch, pos, d_vocab] of the new tokens only, attending also to every position <paramref name="cache"/>
    /// holds, and appending the new positions' keys and values to it (TransformerLens's past_kv_cache). Running a
    /// sequence in pieces through one cache gives the logits of running it whole.
    /// </summary>
    public Tensor Run(Tensor tokens, KeyValueCache cache)
    {
        if (cache.Layers != Config.NLayers)
            throw new ModelInputException(nameof(cache), $"The cache has {cache.Layers} layers but {Config.ModelName} has n_layers = {Config.NLayers}.");
        using var scope = torch.NewDisposeScope();
        return Forward(tokens, null, cache).MoveToOuterDisposeScope();
    }

    /// <summary>A key/value cache for this model, empty, for <see cref="Run(Tensor, KeyValueCache)"/>.</summary>
    public KeyValueCache NewKeyValueCache() => new(Config.NLayers);

    Tensor Forward(Tensor tokens, Tensor? attentionMask, KeyValueCache? cache = null)
    {
        long past = cache?.Length ?? 0;
        tokens = CheckTokens(tokens, attentionMask, past);
        var device = embed.W_E.device;
        long pos = tokens.shape[1];
        var padding = attentionMask?.to(device);
        var mask = new AttentionMask(pos, padding, device, past);
        var localMask = Config.UseLocalAttn ? new AttentionMask(pos, padding, device, past, Config.WindowSize) : null;

        // With padding, positions count real tokens only, so a left-padded prompt sees the positions it would alone.
        using Scalar first = past, end = past + pos; // held (see HeldScalars)
        var positions = padding is null
            ? torch.arange(first, end, device: device).expand(tokens.shape[0], pos)
            : padding.to(ScalarType.Int64).cumsum(1).sub(HeldScalars.One).clamp_min(HeldScalars.Zero); // [batch, pos]
        var residual = hook_embed.Apply(embed.Forward(tokens)); // [batch, pos, d_model]
        if (pos_embed is not null) residual = residual.Plus(hook_pos_embed!.Apply(pos_embed.Forward(positions))); // Plus: see HeldScalars
        var inputs = new BlockInputs(mask, localMask, _rotary?.Angles(positions), cache, _localRotary?.Angles(positions));
        foreach (var block in blocks) residual = block.Forward(residual, inputs);
        var logits = unembed.Forward(ln_final.Forward(residual)); // [batch, pos, d_vocab]
        return Config.OutputLogitsSoftCap is double cap ? (logits / cap).tanh_().mul_(cap) : logits;
    }

    Tensor CheckTokens(Tensor tokens, Tensor? attentionMask, long past = 0)
    {
        if (tokens.dim() == 1) tokens = tokens.unsqueeze(0);
        if (tokens.dim() != 2)
            throw new ModelInputException("tokens", $"tokens must be [batch, pos] (or [pos]); got shape {ShapeText.Of(tokens.shape)}.");
        if (tokens.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
            throw new ModelInputException("tokens", $"tokens must be integer token ids; got dtype {tokens.dtype}.");
        long pos = tokens.shape[1];
        if (pos == 0) throw new ModelInputException("tokens", "tokens is empty: give at least one token.");
        if (past + pos > Config.NCtx)
            throw new ModelInputException("tokens", $"The sequence has {past + pos} tokens{(past > 0 ? $" ({past} cached)" : "")} but {Config.ModelName} accepts at most n_ctx = {Config.NCtx}; truncate it or split it into windows.");
        long max = tokens.max().item<long>(), min = tokens.min().item<long>();
        if (max >= Config.DVocab || min < 0)
        {
            long bad = max >= Config.DVocab ? max : min;
            var where = (tokens == bad).nonzero()[0];
            throw new ModelInputException("tokens",
                $"Token id {bad} at [batch {where[0].item<long>()}, position {where[1].item<long>()}] is outside the vocabulary: " +
                $"{Config.ModelName} has d_vocab = {Config.DVocab}, so ids must be in [0, {Config.DVocab - 1}]. Was the text tokenized with another model's tokenizer?");
        }
        if (attentionMask is not null && !attentionMask.shape.SequenceEqual(tokens.shape))
            throw new ModelInputException("attentionMask", $"attentionMask has shape {ShapeText.Of(attentionMask.shape)} but tokens have {ShapeText.Of(tokens.shape)}.");
        return tokens.to(ScalarType.Int64).to(embed.W_E.device);
    }

    /// <summary>Moves the model to another device ("cpu", "cuda", "cuda:1") and/or precision.</summary>
    public HookedTransformer MoveTo(string device, ScalarType? dtype = null)
    {
        Options = new ModelOptions(device, dtype ?? Options.DType);
        this.to(Options.DType).to(Options.TorchDevice);
        return this;
    }
}

/// <summary>An argument of a forward pass is unusable; <see cref="SharpLensArgumentException.ParamName"/> names it.</summary>
public sealed class ModelInputException(string argument, string message) : SharpLensArgumentException(argument, message);
