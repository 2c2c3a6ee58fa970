using TorchSharp;
using TorchSharp.Modules;
using SharpLens.Hooks;
using static TorchSharp.torch;

namespace SharpLens.Models.Components;

/// <summary>
/// A sparse mixture of experts in place of the MLP (Mixtral; TransformerLens's MoE): a router scores every expert,
/// each token goes to its top k, and their outputs are mixed by the renormalised router probabilities:
/// <code>
/// router_logits = x W_gate                                   [batch, pos, num_experts]   hook_router_logits
/// p = softmax(router_logits)  (float32)                      [batch, pos, num_experts]   hook_expert_weights
/// w, e = top_k(p),  w = w / Σ w                              [batch, pos, k]             hook_expert_indices (e)
/// out = Σ_j w_j · expert_{e_j}(x),   expert(x) = (act(x W_gate) ⊙ x W_in) W_out           (a gated MLP)
/// </code>
/// Each expert is a gated <see cref="Mlp"/> under <c>experts.{i}</c> with its own hooks; it runs only on the tokens
/// routed to it, so its hook_pre / hook_post carry [1, routed tokens, d_mlp]. Which experts fired for each token is
/// the cache entry <c>hook_expert_indices</c>.
/// </summary>
public sealed class MixtureOfExperts : nn.Module
{
    readonly int _experts, _k;
    public Parameter W_gate; // [d_model, num_experts], the router
    public ModuleList<Mlp> experts;
    readonly HookPoint hook_router_logits, hook_expert_weights, hook_expert_indices;

    public MixtureOfExperts(ModelConfig cfg, string name, HookPointSet hooks) : base(name)
    {
        (_experts, _k) = (cfg.NumExperts!.Value, cfg.ExpertsPerToken!.Value);
        W_gate = new Parameter(ParameterAllocation.Empty(cfg.DModel, _experts));
        hook_router_logits = hooks.Create($"{name}.hook_router_logits");
        hook_expert_weights = hooks.Create($"{name}.hook_expert_weights");
        hook_expert_indices = hooks.Create($"{name}.hook_expert_indices");
        var expertConfig = cfg with { GatedMlp = true };
        experts = new ModuleList<Mlp>([.. Enumerable.Range(0, _experts).Select(e => new Mlp(expertConfig, $"{name}.experts.{e}", hooks))]);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) // [batch, pos, d_model]
    {
        long batch = x.shape[0], pos = x.shape[1], d = x.shape[2];
        var routerLogits = hook_router_logits.Apply(x.MatMul(W_gate)); // [batch, pos, num_experts]
        var probabilities = hook_expert_weights.Apply(routerLogits.to(ScalarType.Float32).softmax(-1)); // [batch, pos, num_experts]
        var (top, chosen) = probabilities.topk(_k, dim: -1); // [batch, pos, k] each
        chosen = hook_expert_indices.Apply(chosen);
        var weights = (top / top.sum(-1, keepdim: true)).to(x.dtype).view(batch * pos, _k); // [tokens, k]
        var flat = x.reshape(batch * pos, d); // [tokens, d_model]
        var flatChosen = chosen.reshape(batch * pos, _k); // [tokens, k]
        var output = torch.zeros_like(flat); // [tokens, d_model]
        for (int e = 0; e < _experts; e++)
        {
            var hits = (flatChosen == e).nonzero(); // [routed, 2]: token, slot
            if (hits.shape[0] == 0) continue;
            var (tokens, slots) = (hits[.., 0], hits[.., 1]);
            var expertOut = experts[e].Forward(flat.index_select(0, tokens).unsqueeze(0)).squeeze(0); // [routed, d_model]
            var weight = weights[tokens, slots].unsqueeze(-1); // [routed, 1]
            output.index_add_(0, tokens, expertOut * weight, 1);
        }
        return output.view(batch, pos, d); // [batch, pos, d_model]
    }
}
