// The console app of the package tests: an organism forward and a MiniLM sentence embedding, from the packages alone.
using SharpLens.Models.Encoder;
using SharpLens.Organisms;
using SharpLens.Reports;
using TorchSharp;

using var induction = Organism.Induction();
using var tokens = torch.tensor(new long[] { 0, 7, 12, 30, 7, 12 }).unsqueeze(0); // [batch 1, pos 6]
using var logits = induction.Model.Run(tokens);                                   // [1, 6, d_vocab]
Console.WriteLine($"induction logits [{string.Join(", ", logits.shape)}]");
var findings = InductionFindings.Measure(induction); // loss on random vs repeated halves, head scores
Console.WriteLine($"loss ratio {findings.LossRatio:0.0} (random half / repeated half); {InductionTourReport.InductionHeadsLine(findings)}");

using var minilm = HookedEncoder.FromPretrained("all-MiniLM-L6-v2");
using var e = minilm.EmbedSentences(["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]);
using var cos = SentenceEmbedding.CosineSimilarity(e, e);
Console.WriteLine($"embeddings [{string.Join(", ", e.shape)}]; cos(0,1) = {cos[0, 1].item<float>():0.000}; cos(0,2) = {cos[0, 2].item<float>():0.000}");
