using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Organisms;
using SharpLens.Saes;
using SharpLens.Saes.Data;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>
/// What `sae train` and `sae eval` measure on held-out contexts and write to eval.json: L0, MSE, explained variance,
/// dead and dense features, the density histogram (density.png), CE loss recovered for decoders, and for the latent
/// organism which feature best tracks its planted latent.
/// </summary>
static class SaeEvaluationRun
{
    public const string EvalFile = "eval.json", HistogramFile = "density.png";

    /// <summary>Contexts per model call: about 4096 tokens.</summary>
    public static int ContextsPerCall(int contextSize) => Math.Max(1, 4096 / contextSize);

    public sealed record Result(JsonObject Json, SaeReconstruction Reconstruction);

    public static Result Evaluate(SaeSubject subject, Sae sae, string hook, SaeDataSource data, int contextSize, long evalTokens, long seed, string outFolder)
    {
        var reader = subject.Reader(hook);
        var contexts = subject.Contexts(data, contextSize, heldOut: true, seed);
        var chunks = ActivationChunks.FromModel(reader, Saes.Data.Contexts.Batches(contexts, ContextsPerCall(contextSize)), subject.ExcludedTokenIds());
        var reconstruction = SaeEvaluation.Reconstruction(sae, Limited(chunks, evalTokens, sae.Config.DIn, hook));

        var json = new JsonObject
        {
            ["model"] = subject.Name, ["hook"] = hook, ["architecture"] = sae.Config.Architecture.ToString().ToLowerInvariant(),
            ["d_in"] = sae.Config.DIn, ["d_sae"] = sae.Config.DSae, ["eval_tokens"] = reconstruction.Inputs,
            ["l0"] = reconstruction.L0, ["mse"] = reconstruction.Mse, ["explained_variance"] = reconstruction.ExplainedVariance,
            ["dead_features"] = reconstruction.DeadFeatures, ["dead_fraction"] = reconstruction.DeadFeatures / (double)sae.Config.DSae,
            ["dense_features"] = reconstruction.DenseFeatures(),
        };
        if (subject.Decoder is { } decoder)
        {
            using var scope = torch.NewDisposeScope();
            int ceContexts = subject.Organism is null ? 16 : 512;
            var tokens = Saes.Data.Contexts.Batches(subject.Contexts(data, contextSize, heldOut: true, seed).Take(ceContexts), ceContexts).First(); // [contexts, pos]
            var ce = SaeEvaluation.CeLossRecovered(decoder, sae, tokens, hook, subject.LossMask(tokens));
            json["ce_loss"] = new JsonObject
            {
                ["clean"] = ce.Clean, ["spliced"] = ce.Spliced, ["zero_ablation"] = ce.ZeroAblation, ["recovered"] = ce.Recovered,
                ["contexts"] = tokens.shape[0], ["predictions"] = subject.Latent is null ? "every next token" : "the answer only (the latent organism's task)",
            };
        }
        else json["ce_loss_note"] = subject.Encoder!.HasMlmHead
            ? "not measured: CE loss recovered is next-token loss, which an encoder does not have (masked-LM loss recovered is not implemented)."
            : "not measured: an encoder has no next-token loss, and this one has no masked-LM head to give a token loss at all.";
        if (subject.Latent is { } latent) json["planted_latent"] = LatentTracking(subject, sae, hook, latent, seed);

        var histogram = SaeEvaluation.Histogram(reconstruction.FeatureDensity);
        json["density_histogram"] = new JsonObject
        {
            ["log10_edges"] = new JsonArray([.. histogram.Edges.Select(e => (JsonNode)e)]),
            ["counts"] = new JsonArray([.. histogram.Counts.Select(c => (JsonNode)c)]), ["dead"] = histogram.Dead,
        };
        Directory.CreateDirectory(outFolder);
        SaeEvaluation.SaveHistogramPlot(histogram, Path.Combine(outFolder, HistogramFile), $"Feature density, {subject.Name} {hook}");
        return new Result(json, reconstruction);
    }

    /// <summary>Writes eval.json through a temporary file.</summary>
    public static string Write(JsonObject json, string outFolder)
    {
        string path = Path.Combine(outFolder, EvalFile);
        IO.AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        return path;
    }

    public static void Print(JsonObject json)
    {
        Console.WriteLine($"Evaluated on {json["eval_tokens"]} held-out tokens: L0 {(double)json["l0"]!:0.0}, MSE {(double)json["mse"]!:0.0000}, " +
                          $"explained variance {(double)json["explained_variance"]!:P1}, dead {json["dead_features"]}/{json["d_sae"]} ({(double)json["dead_fraction"]!:P1}), dense (>10%) {json["dense_features"]}");
        if (json["ce_loss"] is JsonObject ce)
            Console.WriteLine($"CE loss: clean {(double)ce["clean"]!:0.0000}, with SAE {(double)ce["spliced"]!:0.0000}, zero-ablated {(double)ce["zero_ablation"]!:0.0000}: recovered {(double)ce["recovered"]!:P1}");
        else Console.WriteLine($"CE loss recovered {json["ce_loss_note"]}");
        if (json["planted_latent"] is JsonObject latent)
            foreach (var (position, node) in latent)
                if (node is JsonObject p && p["best_feature"] is not null)
                    Console.WriteLine($"Planted latent at {position}: feature {p["best_feature"]} AUROC {(double)p["best_feature_auroc"]!:0.000} " +
                                      $"(fires on {(double)p["fires_when_latent_1"]!:P0} of latent-1 vs {(double)p["fires_when_latent_0"]!:P0} of latent-0 prompts); " +
                                      $"linear probe on the raw activation: accuracy {(double)p["linear_probe_accuracy"]!:P1}");
    }

    /// <summary>Chunks until <paramref name="tokens"/> rows are read, each disposed once the evaluation moves on.</summary>
    static IEnumerable<(Tensor Input, Tensor? Target)> Limited(IEnumerable<ActivationChunk> chunks, long tokens, int dIn, string hook)
    {
        long read = 0;
        foreach (var chunk in chunks)
        {
            using (chunk)
            {
                if (chunk.Input.shape[1] != dIn)
                    throw new CliArgumentException($"The SAE reads d_in = {dIn} but {hook} gives activations of width {chunk.Input.shape[1]}: it was trained on another hook or model.");
                if (chunk.Rows == 0) continue;
                yield return (chunk.Input, null);
                read += chunk.Rows;
            }
            if (read >= tokens) yield break;
        }
    }

    /// <summary>
    /// For the latent organism: at x₁'s position and at the last prompt position, which SAE feature separates prompts by
    /// the planted latent (x₁ ∈ S) best, by AUROC, beside a logistic probe on the raw activation (half the prompts fit it, half test it).
    /// </summary>
    static JsonObject LatentTracking(SaeSubject subject, Sae sae, string hook, LatentSettings settings, long seed)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        const int n = 2000;
        using var prompts = LatentOrganism.Prompts(settings, n, new Generator((ulong)(seed + 7)));
        var acts = subject.Reader(hook)(prompts.Tokens)[0]; // [n, n_ctx, d]
        long[] labels = prompts.Latent.data<long>().ToArray();
        var result = new JsonObject();
        foreach (var (name, position) in new[] { ("x1_position", 1), ("last_prompt_position", settings.Length) })
        {
            var x = acts[.., position]; // [n, d]
            var features = sae.Encode(x).to(ScalarType.Float64).cpu(); // [n, d_sae]
            var columns = features.t().contiguous(); // [d_sae, n]
            double[] all = columns.data<double>().ToArray();
            int best = -1;
            double bestAuroc = 0.5;
            for (int f = 0; f < sae.Config.DSae; f++)
            {
                double auroc = ProbeMetrics.Auroc(all.AsSpan(f * n, n).ToArray(), labels);
                if (Math.Abs(auroc - 0.5) > Math.Abs(bestAuroc - 0.5)) (best, bestAuroc) = (f, auroc);
            }
            var entry = new JsonObject { ["position"] = position };
            if (best >= 0)
            {
                var fires = columns[best].gt(0);
                var latent = prompts.Latent.eq(1);
                entry["best_feature"] = best;
                entry["best_feature_auroc"] = bestAuroc;
                entry["fires_when_latent_1"] = (fires & latent).sum().item<long>() / (double)Math.Max(1, latent.sum().item<long>());
                entry["fires_when_latent_0"] = (fires & latent.logical_not()).sum().item<long>() / (double)Math.Max(1, latent.logical_not().sum().item<long>());
            }
            var half = n / 2;
            using var probe = LogisticRegression.Fit(x.narrow(0, 0, half), prompts.Latent.narrow(0, 0, half));
            entry["linear_probe_accuracy"] = ProbeMetrics.Accuracy(probe.Predict(x.narrow(0, half, n - half)), prompts.Latent.narrow(0, half, n - half));
            result[name] = entry;
        }
        return result;
    }
}
