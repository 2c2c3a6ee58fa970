using SharpLens.Attribution;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Organisms;

/// <summary>A transcoder feature at one layer and prompt position.</summary>
public readonly record struct LayerFeature(int Layer, int Position, long Feature);

/// <summary>The counts of <see cref="TwoHopCircuit.Analyse"/> over one set of two-hop prompts [BOS, a, R2].</summary>
/// <param name="Accuracy">Fraction of these prompts the model answers g(f(a)).</param>
/// <param name="PathsInGraph">Prompts whose unpruned graph has token a → a B feature of f(a) → a C feature of g(f(a)) → logit g(f(a)), every edge positive.</param>
/// <param name="PathsKeptByPruning">Of those, prompts where the path's nodes and edges all survive pruning at 0.8 / 0.98.</param>
/// <param name="Swaps">(prompt, B′) pairs tried: every B′ whose C differs from the prompt's, where f(a) or B′ has B features.</param>
/// <param name="Flipped">Swaps after which the model's top answer is g(B′).</param>
public sealed record TwoHopPromptCounts(int Prompts, double Accuracy, int PathsInGraph, int PathsKeptByPruning, int Swaps, int Flipped)
{
    public double FlippedFraction => Swaps == 0 ? 0 : Flipped / (double)Swaps;
    public override string ToString() =>
        $"{Prompts} prompts, accuracy {Accuracy:F3}, path in {PathsInGraph} graphs ({PathsKeptByPruning} kept by pruning), flipped {Flipped}/{Swaps} = {FlippedFraction:P1}";
}

/// <summary>
/// What <see cref="TwoHopCircuit.Analyse"/> found on the two-hop prompts [BOS, a, R2] of a <see cref="TwoHopOrganism"/>:
/// the features, then the counts over all prompts and over the held-out and trained A's separately
/// (<see cref="TwoHopSettings.HeldOutPerB"/>; with none held out, <see cref="HeldOut"/> counts no prompts).
/// </summary>
/// <param name="BFeatures">For each B token: the features (at a's position or the last one) that fire for (nearly) exactly the A's with that B.</param>
/// <param name="CFeatures">For each C token: the features at the last position that fire for (nearly) exactly the A's with that C.</param>
public sealed record TwoHopCircuitFindings(IReadOnlyDictionary<int, LayerFeature[]> BFeatures, IReadOnlyDictionary<int, LayerFeature[]> CFeatures,
    TwoHopPromptCounts All, TwoHopPromptCounts HeldOut, TwoHopPromptCounts Trained, double ReplacementScore)
{
    public string Summary() =>
        $"B features for {BFeatures.Count(kv => kv.Value.Length > 0)}/{BFeatures.Count} B's ({BFeatures.Sum(kv => kv.Value.Length)} in all), C features for {CFeatures.Count(kv => kv.Value.Length > 0)}/{CFeatures.Count} C's; mean replacement score {ReplacementScore:F3}\n" +
        $"all: {All}\nheld out: {HeldOut}\ntrained: {Trained}";
}

/// <summary>
/// The two-hop organism's circuit through its transcoders, found and tested the way the attribution-graph papers do:
/// features are named by what they fire on, each prompt's attribution graph is searched for the path
/// token a → B feature → C feature → logit C, and the B features are swapped for those of another B′ (the B features of
/// f(a) set to 0, those of B′ to their mean activation on B′'s prompts) to see whether the answer becomes g(B′).
/// </summary>
public static class TwoHopCircuit
{
    public static TwoHopCircuitFindings Analyse(TwoHopOrganism organism, TranscoderSet transcoders, double precision = 0.9, double recall = 0.75)
    {
        using var scope = torch.NewDisposeScope();
        var s = organism.Settings;
        var rm = new ReplacementModel(organism.Model, transcoders);
        var (prompts, answers) = TwoHopOrganism.AllPrompts(s, TwoHopTask.AToC); // [n_a, 3], [n_a]
        int[] f = s.F(), g = s.G();
        int nA = s.NA, nL = rm.NLayers;
        // Activations of every prompt: [n_a, n_layers, 3, d_tc].
        var acts = torch.stack(Enumerable.Range(0, nA).Select(i => { using var st = rm.Run(prompts[i]); return st.Activations.clone(); }));
        var fires = acts.gt(0); // [n_a, n_layers, 3, d_tc]

        var fired = fires.contiguous().data<bool>().ToArray(); // [n_a, n_layers, 3, d_tc] flattened
        long dTc = transcoders.DTranscoder;
        bool Fired(int prompt, int layer, int position, long feature) => fired[((prompt * nL + layer) * TwoHopSettings.PromptLength + position) * dTc + feature];
        // Features at these positions that fire on at least `recall` of a group's prompts, and on few others (`precision`).
        LayerFeature[] Selective(int[] positions, Func<int, bool> inGroup)
        {
            var found = new List<LayerFeature>();
            int groupSize = Enumerable.Range(0, nA).Count(inGroup);
            foreach (int position in positions)
                for (int layer = 0; layer < nL; layer++)
                    for (long feature = 0; feature < dTc; feature++)
                    {
                        int hits = 0, count = 0;
                        for (int i = 0; i < nA; i++)
                            if (Fired(i, layer, position, feature)) { count++; if (inGroup(i)) hits++; }
                        if (count > 0 && hits >= precision * count && hits >= recall * groupSize) found.Add(new LayerFeature(layer, position, feature));
                    }
            return [.. found];
        }
        // B can be computed where a is (from the token alone) or at the last position (after attention brought a
        // there, as the one-hop prompt [BOS, a, R1] → f(a) needs): both are searched.
        int last = TwoHopSettings.PromptLength - 1;
        var bFeatures = Enumerable.Range(s.FirstB, s.NB).ToDictionary(b => b, b => Selective([1, last], i => f[i] == b));
        var cFeatures = Enumerable.Range(s.FirstC, s.NC).ToDictionary(c => c, c => Selective([last], i => g[f[i] - s.FirstB] == c));

        var inGraph = new bool[nA];
        var kept = new bool[nA];
        double replacement = 0;
        var options = new AttributionOptions { BatchSize = 64 };
        for (int i = 0; i < nA; i++)
        {
            int b = f[i], c = (int)answers[i].item<long>();
            using var graph = Attributor.Attribute(rm, prompts[i], options);
            using var pruned = GraphPruning.Prune(graph);
            replacement += GraphPruning.Scores(graph).Replacement / nA;
            int logit = Array.IndexOf(graph.LogitTargets, (long)c);
            if (logit < 0) continue;
            int logitNode = graph.LogitStart + logit, tokenNode = graph.TokenStart + 1;
            var a = graph.AdjacencyMatrix;
            bool found = false, survived = false;
            foreach (var bf in bFeatures[b])
                foreach (var cf in cFeatures[c].Where(cf => cf.Layer > bf.Layer))
                {
                    int bn = graph.NodeOf(bf.Layer, bf.Position, bf.Feature), cn = graph.NodeOf(cf.Layer, cf.Position, cf.Feature);
                    if (bn < 0 || cn < 0) continue;
                    if (!(a[bn, tokenNode].item<float>() > 0 && a[cn, bn].item<float>() > 0 && a[logitNode, cn].item<float>() > 0)) continue;
                    found = true;
                    var e = pruned.EdgeMask;
                    if (e[bn, tokenNode].item<bool>() && e[cn, bn].item<bool>() && e[logitNode, cn].item<bool>()) survived = true;
                }
            inGraph[i] = found;
            kept[i] = survived;
        }

        // Swap the B features: those of f(a) to 0, those of B′ to their mean activation on B′'s prompts.
        var swaps = new int[nA];
        var flipped = new int[nA];
        for (int i = 0; i < nA; i++)
        {
            int b = f[i], c = g[b - s.FirstB];
            foreach (int b2 in Enumerable.Range(s.FirstB, s.NB).Where(x => g[x - s.FirstB] != c))
            {
                var group = Enumerable.Range(0, nA).Where(k => f[k] == b2).ToArray();
                var interventions = bFeatures[b].Select(bf => FeatureIntervention.Set(bf.Layer, bf.Position, bf.Feature, 0))
                    .Concat(bFeatures[b2].Select(bf => FeatureIntervention.Set(bf.Layer, bf.Position, bf.Feature,
                        group.Average(k => acts[k, bf.Layer, bf.Position, bf.Feature].item<float>())))).ToList();
                if (interventions.Count == 0) continue;
                using var result = FeatureInterventions.Run(rm, prompts[i], interventions);
                swaps[i]++;
                if (result.Logits[-1].argmax().item<long>() == g[b2 - s.FirstB]) flipped[i]++;
            }
        }
        bool[] heldOut = s.HeldOutA();
        TwoHopPromptCounts Counts(bool? held)
        {
            var chosen = Enumerable.Range(0, nA).Where(i => held is not { } h || heldOut[i] == h).ToArray();
            return new TwoHopPromptCounts(chosen.Length, chosen.Length == 0 ? double.NaN : organism.Accuracy(TwoHopTask.AToC, held),
                chosen.Count(i => inGraph[i]), chosen.Count(i => kept[i]), chosen.Sum(i => swaps[i]), chosen.Sum(i => flipped[i]));
        }
        return new TwoHopCircuitFindings(bFeatures, cFeatures, Counts(null), Counts(true), Counts(false), replacement);
    }
}
