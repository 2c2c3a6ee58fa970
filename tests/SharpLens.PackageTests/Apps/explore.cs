#:package SharpLens.Cpu@VERSION
// A file-based app (dotnet run explore.cs): compiled with PublishAot=true, so reflection-based JSON is off.
using SharpLens.Models;
using SharpLens.Models.Encoder;
using SharpLens.Organisms;
using TorchSharp;

var settings = new InductionSettings();
Console.WriteLine($"settings round trip: {InductionSettings.FromJson(settings.ToJson()) == settings}");
Console.WriteLine($"config round trip: {ModelConfig.FromJson(settings.ModelConfig().ToJson()).ToJson() == settings.ModelConfig().ToJson()}");

using var induction = Organism.Induction();
using var tokens = torch.tensor(new long[] { 0, 7, 12, 30, 7, 12 }).unsqueeze(0); // [batch 1, pos 6]
var (logits, cache) = induction.Model.RunWithCache(tokens, name => name.EndsWith("hook_pattern"));
Console.WriteLine($"pattern [{string.Join(", ", cache["pattern", 1].shape)}]; from cache: {induction.FromCache}");

using var minilm = HookedEncoder.FromPretrained("all-MiniLM-L6-v2");
using var e = minilm.EmbedSentences(["The weather is lovely today.", "It's so sunny outside!"]);
using var cos = SentenceEmbedding.CosineSimilarity(e, e);
Console.WriteLine($"cos(0,1) = {cos[0, 1].item<float>():0.000}");
