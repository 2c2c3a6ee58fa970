using SharpLens.Hooks;
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Saes;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>Decoders generate and read logits; encoders read a hidden state (or masked-LM logits).</summary>
public enum TracedModelKind { Decoder, Encoder }

/// <summary>
/// What tracing needs from a hooked model, whatever kind it is: its hook points, a forward pass, one generation step,
/// a tokenizer, and the final norm and unembedding for the plans' <c>ln_final</c> and <c>unembed</c> operations.
/// </summary>
public abstract class TraceTarget
{
    public abstract string Name { get; }
    public abstract TracedModelKind Kind { get; }
    public abstract int NLayers { get; }
    public abstract int NCtx { get; }
    public abstract int DVocab { get; }
    public abstract IReadOnlyDictionary<string, HookPoint> HookDict { get; }
    internal abstract Device Device { get; }

    /// <summary>The output [batch, pos, ...] for token ids [batch, pos].</summary>
    internal abstract Tensor Forward(Tensor tokens, Tensor? attentionMask);

    /// <summary>One generation step's output for the new positions, appending to <paramref name="cache"/>.</summary>
    internal virtual Tensor Step(Tensor tokens, KeyValueCache cache) =>
        throw new PlanValidationException($"{Name} is an encoder: it cannot generate. Drop \"generate\" from the plan.");

    internal virtual KeyValueCache NewCache() => throw new PlanValidationException($"{Name} cannot generate.");

    internal abstract Tensor Tokenize(string text);
    internal abstract Tensor FinalNorm(Tensor residual);
    internal abstract Tensor Unembed(Tensor residual);

    /// <summary>Where an encoder's padding goes: BERT's positions count from the left, so it pads on the right.</summary>
    internal bool PadsLeft => Kind == TracedModelKind.Decoder;

    /// <summary>The model's layout, as a remote client needs it to name hooks (see <see cref="TraceLayout"/>).</summary>
    public TraceLayout Layout => TraceLayout.Of(Name, Kind, NLayers, NCtx, DVocab, HookOrder.Of(this));

    public static TraceTarget Of(HookedTransformer model) => new DecoderTarget(model, model.Config.ModelName);
    public static TraceTarget Of(HookedEncoder model) => new EncoderTarget(model);
    public static TraceTarget Of(HookedSaeTransformer model) => new DecoderTarget(model.Model, model.Model.Config.ModelName + " + SAEs");

    sealed class DecoderTarget(HookedTransformer model, string name) : TraceTarget
    {
        public override string Name => name;
        public override TracedModelKind Kind => TracedModelKind.Decoder;
        public override int NLayers => model.Config.NLayers;
        public override int NCtx => model.Config.NCtx;
        public override int DVocab => model.Config.DVocab;
        public override IReadOnlyDictionary<string, HookPoint> HookDict => model.HookDict;
        internal override Device Device => model.embed.W_E.device;
        internal override Tensor Forward(Tensor tokens, Tensor? attentionMask) => model.Run(tokens, attentionMask);
        internal override Tensor Step(Tensor tokens, KeyValueCache cache) => model.Run(tokens, cache);
        internal override KeyValueCache NewCache() => model.NewKeyValueCache();
        internal override Tensor Tokenize(string text) => model.ToTokens(text);
        internal override Tensor FinalNorm(Tensor residual) => Techniques.FinalNorm.Apply(model, residual);
        internal override Tensor Unembed(Tensor residual) => model.unembed.Forward(residual);
    }

    sealed class EncoderTarget(HookedEncoder model) : TraceTarget
    {
        public override string Name => model.Config.ModelName;
        public override TracedModelKind Kind => TracedModelKind.Encoder;
        public override int NLayers => model.Config.NLayers;
        public override int NCtx => model.Config.NCtx;
        public override int DVocab => model.Config.DVocab;
        public override IReadOnlyDictionary<string, HookPoint> HookDict => model.HookDict;
        internal override Device Device => model.embed.embed.W_E.device;
        internal override Tensor Forward(Tensor tokens, Tensor? attentionMask) => model.Run(tokens, attentionMask);
        internal override Tensor Tokenize(string text)
        {
            var tokenizer = model.Tokenizer ?? throw new PlanValidationException($"{Name} has no tokenizer: give the invoke \"tokens\" instead of \"text\".");
            return tensor(tokenizer.Encode(text).Select(i => (long)i).ToArray()).unsqueeze(0); // [1, pos]
        }
        internal override Tensor FinalNorm(Tensor residual) =>
            throw new PlanValidationException($"{Name} is a BERT encoder: it has no final norm ('ln_final'); its blocks end normalised.");
        internal override Tensor Unembed(Tensor residual) => model.unembed is { } u
            ? u.Forward(model.mlm_head!.Forward(residual))
            : throw new PlanValidationException($"{Name} has no masked-LM head, so 'unembed' has nothing to apply.");
    }
}

/// <summary>
/// A model as a trace sees it: name, kind, layers and every hook name in the order the forward pass reaches them.
/// A server sends it to clients, which name hooks with it (<c>t.Blocks[1].Output</c>) without holding the weights.
/// </summary>
public sealed record TraceLayout
{
    [System.Text.Json.Serialization.JsonPropertyName("name")] public string Name { get; init; } = "";
    [System.Text.Json.Serialization.JsonPropertyName("kind")] public string Kind { get; init; } = "decoder";
    [System.Text.Json.Serialization.JsonPropertyName("n_layers")] public int NLayers { get; init; }
    [System.Text.Json.Serialization.JsonPropertyName("n_ctx")] public int NCtx { get; init; }
    [System.Text.Json.Serialization.JsonPropertyName("d_vocab")] public int DVocab { get; init; }
    [System.Text.Json.Serialization.JsonPropertyName("hooks")] public List<string> Hooks { get; init; } = [];

    public static TraceLayout Of(string name, TracedModelKind kind, int layers, int nCtx, int dVocab, IReadOnlyList<string> hooks) =>
        new() { Name = name, Kind = kind == TracedModelKind.Decoder ? "decoder" : "encoder", NLayers = layers, NCtx = nCtx, DVocab = dVocab, Hooks = [.. hooks] };

    public bool IsEncoder => Kind == "encoder";
}
