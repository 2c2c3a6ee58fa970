# Writes notebooks/main-demo.ipynb (cells without outputs) from the cells below: python3 scripts/make-main-demo-notebook.py
import json, os
cells = []
def md(text): cells.append({"cell_type": "markdown", "metadata": {}, "source": text.strip("\n")})
def code(text): cells.append({"cell_type": "code", "execution_count": None, "metadata": {"dotnet_interactive": {"language": "csharp"}}, "outputs": [], "source": text.strip("\n")})

md("""
# SharpLens Main Demo

TransformerLens's Main Demo, on models that need no download: the **induction organism** (a 2-layer attention-only
transformer the project trains on repeated random tokens; trained on first use, about 35 s on two cores, then cached),
the **latent organism** (it answers Yes when the first token is in a secret set) and **all-MiniLM-L6-v2** (real
weights, inside the SharpLens package). Load, cache, attention patterns, induction heads, logit lens, activation
patching, and a sparse autoencoder with its feature dashboard. `SharpLens.Interactive` makes every result below draw
itself inline.

The packages come from the local feed the README's *Install* section packs and registers; or add a line
`#i "nuget: /absolute/path/to/feed"` above the first `#r`.
""")
code("""
#r "nuget: SharpLens.Cpu, 0.1.0"
#r "nuget: SharpLens.Interactive, 0.1.0"
""")
md("""
Touching TorchSharp before anything of SharpLens is fine: the SharpLens package's extension script has already loaded
libtorch with the libstdc++ fix when the `#r` above finished. A tensor shows its shape, dtype, statistics and values.
""")
code("""
using TorchSharp;
var t = torch.arange(12).reshape(3, 4).to(torch.float32);
t
""")
md("""
## Load a model

`Organism.Induction()` trains the organism on first use (a line every 10% with the time left) and reads it from
`~/.cache/sharplens/organisms/` afterwards. Its training record shows the loss curve.
""")
code("""
using SharpLens.Organisms;
var induction = Organism.Induction();
var model = induction.Model;
induction.Training
""")
md("""
## Cache activations

Sequences of the organism's training task: BOS, 20 random tokens, the same 20 again. `RunWithCache` keeps every
activation by its TransformerLens name.
""")
code("""
var tokens = InductionOrganism.RepeatedSequences(induction.Settings, 1, new torch.Generator(42)); // [1, 41]
var (logits, cache) = model.RunWithCache(tokens);
cache
""")
md("""
## Attention patterns

Layer 1's heads on that sequence (query ↓, key →). On the repeated half, the induction heads attend to the token
*after* the earlier copy of the current token: a stripe parallel to the diagonal, 19 positions back.
""")
code("""
using SharpLens.Interactive;
var labels = tokens[0].data<long>().Select(id => id.ToString()).ToList();   // token ids as the axis labels
AttentionPatterns.FromCache(cache, layer: 1, tokens: labels)
""")
md("""
## Induction heads

Each head scored as a previous-token, duplicate-token and induction head on 64 fresh sequences, the loss per position
(high on the random half, low on the repeat), and the top heads' patterns.
""")
code("""
var findings = InductionFindings.Measure(induction);
display($"loss ratio {findings.LossRatio:0.0} (random half / repeated half); top induction head {findings.TopInductionHead}");
findings
""")
md("""
## Logit lens

The residual stream before each layer read through the final norm and unembedding: the top token and its
probability per layer and position (the last 16 positions). The correct next token on the repeat appears only after
layer 1, where the induction heads write it.
""")
code("""
using SharpLens.Techniques;
var lens = LogitLens.Run(model, tokens);
new LogitLensView(lens)
""")
md("""
## Activation patching

Clean prompts end inside the repeat, so induction predicts the token that followed last time; corrupted prompts
change that earlier token to one absent from the prompt. Patching each head's output (`hook_z`) from the clean run
into the corrupted one shows which heads carry the answer (layer 1's induction heads share it, so no single head
restores all of it); patching the residual stream per position shows where.
""")
code("""
using SharpLens.Techniques.Patching;
int n = induction.Settings.HalfLength, k = 6, count = 8;
var full = InductionOrganism.RepeatedSequences(induction.Settings, count, new torch.Generator(11)); // [8, 41]
var clean = full[.., ..(n + 1 + k)];      // ends with r_k of the repeat: the next token is r_{k+1}
var answers = full[.., k + 1];
var absent = torch.tensor(Enumerable.Range(0, count).Select(b => (long)Enumerable.Range(1, induction.Settings.Vocab - 1)
    .First(v => !clean[b].data<long>().Contains(v))).ToArray());
var corrupted = clean.clone();
corrupted[.., k + 1] = absent;            // the earlier r_{k+1} replaced: induction now predicts the absent token
var pairs = new PromptPairs(clean, corrupted, answers, absent);
var byHead = ActivationPatching.Sweep(model, pairs, "z");
long best = byHead.Values.flatten().argmax().item<long>(), heads = byHead.Values.shape[1];   // Values: [layer, head]
display($"top patched head {best / heads}.{best % heads} restores {byHead.Values.max().item<float>():0.00} of the clean logit difference");
byHead
""")
code("""
ActivationPatching.Sweep(model, pairs, "resid_pre")
""")
md("""
## A sparse autoencoder

A TopK SAE (k = 4, 128 features) on the latent organism's `blocks.0.hook_resid_post`, trained here in a few seconds
(its loss curve below), then the feature dashboard of the six densest features (SAELens/Neuronpedia-style: density,
activation histogram, top contexts with each token shaded by the feature's activation).
""")
code("""
using SharpLens.Saes;
using SharpLens.Saes.Data;
using SharpLens.Saes.Dashboards;
var latent = Organism.Latent();
string hook = "blocks.0.hook_resid_post";
var reader = ModelActivations.Reader(latent.Model, hook);
var prompts = LatentOrganism.Prompts(latent.Settings, 4096, new torch.Generator(3));
var acts = reader(prompts.Tokens)[0];                         // [4096, pos, d_model]
var rows = acts.reshape(-1, acts.shape[^1]);                   // [4096 · pos, d_model]
var sae = new Sae(new SaeConfig(SaeArchitecture.TopK, (int)rows.shape[1], 128) { K = 4 }, seed: 1);
var trainer = new SaeTrainer(sae, new SaeTrainingSettings { Steps = 600, LearningRate = 1e-3, InitBDecWithMean = true, ReportEvery = 1 });
var draw = new torch.Generator(5);
var seen = new Seen();
var clock = System.Diagnostics.Stopwatch.StartNew();
trainer.Train(_ => rows[torch.randint(0, rows.shape[0], [256], generator: draw)], seen);
var last = seen.Steps[^1];
display($"SAE explained variance {last.ExplainedVariance:0.000}, L0 {last.L0:0.0}, {last.DeadFeatures} dead features");

class Seen : IProgress<SaeTrainingProgress>   // every step's report, synchronously
{
    public List<SaeTrainingProgress> Steps { get; } = new();
    public void Report(SaeTrainingProgress p) => Steps.Add(p);
}
new SharpLens.Training.TrainingRecord(seen.Steps.Select(p => p.Loss).ToList(), clock.Elapsed)   // the loss curve
""")
code("""
FeatureDashboard.Build(reader, a => sae.Encode(a), prompts.Tokens[..512], ids => ids.Select(i => $"#{i}").ToList(),
    new FeatureDashboardOptions { TopByDensity = 6 }, title: "SAE features on the latent organism (blocks.0.hook_resid_post)")
""")
md("""
## MiniLM: a real pretrained encoder

all-MiniLM-L6-v2's sentence embeddings (the values Python's sentence-transformers gives: 0.666 and 0.105).
""")
code("""
using SharpLens.Models.Encoder;
var minilm = HookedEncoder.FromPretrained("all-MiniLM-L6-v2");
var e = minilm.EmbedSentences(new[] { "The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium." });
var cos = SentenceEmbedding.CosineSimilarity(e, e);
display($"MiniLM cos(0,1) = {cos[0, 1].item<float>():0.000}; cos(0,2) = {cos[0, 2].item<float>():0.000}");
cos
""")
for i, c in enumerate(cells): c["id"] = f"cell-{i}"
nb = {"cells": cells, "metadata": {"kernelspec": {"display_name": ".NET (C#)", "language": "C#", "name": ".net-csharp"},
      "language_info": {"name": "polyglot-notebook"}}, "nbformat": 4, "nbformat_minor": 5}
json.dump(nb, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "notebooks", "main-demo.ipynb"), "w", encoding="utf-8"), indent=1, ensure_ascii=False)
