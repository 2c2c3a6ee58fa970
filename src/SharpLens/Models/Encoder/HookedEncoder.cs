using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using SharpLens.Models.Components;
using SharpLens.Native;
using static TorchSharp.torch;

namespace SharpLens.Models.Encoder;

/// <summary>
/// A BERT-style encoder whose every activation passes a named hook point, with TransformerLens's HookedEncoder
/// names and shapes. Attention is bidirectional; padding keys (attention mask 0) are never attended to.
/// </summary>
/// <remarks>
/// tokens → embed (ln of word + position + token-type embeddings) → hook_full_embed → blocks[0..n_layers)
/// → last hidden state [batch, pos, d_model] → (with a masked-LM head) mlm_head → unembed → logits [batch, pos, d_vocab].
/// Parameters: embed.embed.W_E, embed.pos_embed.W_pos, embed.token_type_embed.W_token_type, embed.ln.w/b,
/// blocks.{l}.attn.*, blocks.{l}.ln1.w/b, blocks.{l}.mlp.*, blocks.{l}.ln2.w/b, mlm_head.W/b, mlm_head.ln.w/b, unembed.W_U/b_U.
/// </remarks>
public sealed partial class HookedEncoder : HookedRootModule
{
    public BertEmbed embed;
    public ModuleList<BertBlock> blocks;
    public BertMlmHead? mlm_head;
    public Unembed? unembed;
    readonly HookPoint hook_full_embed;

    public override ModelConfig Config { get; }
    public ModelOptions Options { get; private set; }
    public bool HasMlmHead => mlm_head is not null;
    public override Device Device => embed.embed.W_E.device;

    /// <summary>Builds an encoder with random weights (normal with std <see cref="ModelConfig.InitRange"/>, biases 0, norms 1).</summary>
    /// <param name="withMlmHead">Add the masked-LM head and unembedding (BertForMaskedLM); without it the output is the last hidden state (BertModel).</param>
    public HookedEncoder(ModelConfig config, bool withMlmHead = false, ModelOptions? options = null, long seed = 0)
        : this(config, withMlmHead, options, (long?)seed) { }

    HookedEncoder(ModelConfig config, bool withMlmHead, ModelOptions? options, long? seed) : base("HookedEncoder", new HookPointSet())
    {
        TorchNative.EnsureLoaded();
        Config = config.Validated();
        if (Config.AttnOnly) throw new ArgumentException("A BERT encoder has an MLP in every block; AttnOnly must be false.", nameof(config));
        Options = options ?? new ModelOptions();
        // A loader overwrites every weight: allocate them in the model's dtype, so no float32 copy is ever made.
        using var allocation = seed is null ? ParameterAllocation.In(Options.DType) : null;
        embed = new BertEmbed(Config, HookPoints);
        hook_full_embed = HookPoints.Create("hook_full_embed");
        blocks = new ModuleList<BertBlock>([.. Enumerable.Range(0, Config.NLayers).Select(l => new BertBlock(Config, l, HookPoints))]);
        if (withMlmHead)
        {
            mlm_head = new BertMlmHead(Config, HookPoints);
            unembed = new Unembed(Config);
        }
        RegisterComponents();

        if (seed is { } s) InitializeWeights(s);
        this.to(Options.DType).to(Options.TorchDevice);
    }

    /// <summary>An encoder whose parameters are allocated but not initialised: a loader must overwrite every one.</summary>
    internal static HookedEncoder Uninitialized(ModelConfig config, bool withMlmHead, ModelOptions? options) => new(config, withMlmHead, options, null);

    void InitializeWeights(long seed)
    {
        using var _ = torch.no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in named_parameters())
        {
            string leaf = name[(name.LastIndexOf('.') + 1)..];
            if (leaf.StartsWith("W", StringComparison.Ordinal)) p.normal_(0, Config.InitRange, generator);
        }
        if (unembed is not null) unembed.W_U.copy_(embed.embed.W_E.t()); // BERT ties its unembedding to the embedding
    }

    /// <summary>
    /// Like TransformerLens's forward: logits [batch, pos, d_vocab] with a masked-LM head, otherwise (BertModel,
    /// sentence-transformers) the last hidden state [batch, pos, d_model].
    /// </summary>
    /// <param name="tokens">[batch, pos] (or [pos]) token ids, padded on the right.</param>
    /// <param name="attentionMask">[batch, pos]: 1 for real tokens, 0 for padding; null when all are real.</param>
    /// <param name="tokenTypeIds">[batch, pos] segment of each token (0 or 1); null means all 0.</param>
    public Tensor Run(Tensor tokens, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var scope = torch.NewDisposeScope();
        var hidden = Forward(tokens, attentionMask, tokenTypeIds);
        var output = mlm_head is null ? hidden : unembed!.Forward(mlm_head.Forward(hidden)); // [batch, pos, d_vocab]
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Output for tokens with every token type 0 (see the overload with token type ids).</summary>
    public override Tensor Run(Tensor tokens, Tensor? attentionMask = null) => Run(tokens, attentionMask, null);

    /// <summary>Runs with these forward hooks (and token type ids) for this call only; they are removed even if it throws.</summary>
    public Tensor RunWithHooks(Tensor tokens, IEnumerable<(string Name, HookFunction Hook)> forwardHooks,
        Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        using var _ = Hooks(forwardHooks);
        return Run(tokens, attentionMask, tokenTypeIds);
    }

    /// <summary>
    /// Runs (see <see cref="Run(Tensor, Tensor?, Tensor?)"/> for the output) and records the activations at every hook
    /// point whose name passes <paramref name="namesFilter"/> (all of them when null).
    /// </summary>
    public (Tensor Output, ActivationCache Cache) RunWithCache(Tensor tokens, Func<string, bool>? namesFilter,
        Tensor? attentionMask, Tensor? tokenTypeIds, Device? cacheDevice = null) =>
        Record(NamesPassing(namesFilter), () => Run(tokens, attentionMask, tokenTypeIds), cacheDevice);

    /// <summary>The last hidden state [batch, pos, d_model] (what BertModel calls last_hidden_state), whether or not there is a head.</summary>
    public Tensor Encode(Tensor tokens, Tensor? attentionMask = null, Tensor? tokenTypeIds = null)
    {
        using var scope = torch.NewDisposeScope();
        return Forward(tokens, attentionMask, tokenTypeIds).MoveToOuterDisposeScope();
    }

    Tensor Forward(Tensor tokens, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        tokens = CheckTokens(tokens, attentionMask, tokenTypeIds);
        var device = tokens.device;
        var types = tokenTypeIds is null ? torch.zeros_like(tokens) : Batched(tokenTypeIds).to(ScalarType.Int64).to(device);
        var padding = attentionMask is null ? null : Batched(attentionMask).to(device);
        var mask = new AttentionMask(tokens.shape[1], padding, device, isCausal: false);

        var residual = hook_full_embed.Apply(embed.Forward(tokens, types)); // [batch, pos, d_model]
        foreach (var block in blocks) residual = block.Forward(residual, mask);
        return residual;
    }

    static Tensor Batched(Tensor t) => t.dim() == 1 ? t.unsqueeze(0) : t;

    Tensor CheckTokens(Tensor tokens, Tensor? attentionMask, Tensor? tokenTypeIds)
    {
        tokens = Batched(tokens);
        if (tokens.dim() != 2)
            throw new ModelInputException("tokens", $"tokens must be [batch, pos] (or [pos]); got shape {ShapeText.Of(tokens.shape)}.");
        if (tokens.dtype is not (ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
            throw new ModelInputException("tokens", $"tokens must be integer token ids; got dtype {tokens.dtype}.");
        long pos = tokens.shape[1];
        if (pos == 0) throw new ModelInputException("tokens", "tokens is empty: give at least one token.");
        if (pos > Config.NCtx)
            throw new ModelInputException("tokens", $"The sequence has {pos} tokens but {Config.ModelName} accepts at most n_ctx = {Config.NCtx}; truncate it.");
        long max = tokens.max().item<long>(), min = tokens.min().item<long>();
        if (max >= Config.DVocab || min < 0)
            throw new ModelInputException("tokens", $"Token id {(max >= Config.DVocab ? max : min)} is outside the vocabulary [0, {Config.DVocab - 1}] of {Config.ModelName}; was the text tokenized with another model's tokenizer?");
        foreach (var (name, t) in new[] { ("attentionMask", attentionMask), ("tokenTypeIds", tokenTypeIds) })
            if (t is not null && !Batched(t).shape.SequenceEqual(tokens.shape))
                throw new ModelInputException(name, $"{name} has shape {ShapeText.Of(t.shape)} but tokens have {ShapeText.Of(tokens.shape)}.");
        if (tokenTypeIds is not null && (tokenTypeIds.max().item<long>() >= TokenTypeEmbed.TokenTypes || tokenTypeIds.min().item<long>() < 0))
            throw new ModelInputException("tokenTypeIds", $"token type ids must be 0 or 1 (BERT has {TokenTypeEmbed.TokenTypes} segments).");
        return tokens.to(ScalarType.Int64).to(embed.embed.W_E.device);
    }

    /// <summary>Moves the encoder to another device ("cpu", "cuda") and/or precision.</summary>
    public HookedEncoder MoveTo(string device, ScalarType? dtype = null)
    {
        Options = new ModelOptions(device, dtype ?? Options.DType);
        this.to(Options.DType).to(Options.TorchDevice);
        return this;
    }
}
