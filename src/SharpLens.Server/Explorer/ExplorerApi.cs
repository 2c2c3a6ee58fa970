using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpLens.Attribution;
using SharpLens.Models;
using SharpLens.Reports;
using SharpLens.Saes.Dashboards;
using SharpLens.Saes.Data;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Server.Explorer;

// The /api/ endpoints. Each one reads its request, waits its turn on the model's lane, calls the library's technique
// (nothing is re-implemented here), and answers plain numbers; the tensors die with the lane's dispose scope.
public sealed partial class ExplorerServer
{
    /// <summary>The endpoints: path, method, what it does (the README and openapi.json list the same).</summary>
    public static IReadOnlyList<(string Method, string Path, string Summary)> Endpoints { get; } =
    [
        ("GET", "/api/model", "the loaded model, its SAEs, the limits and example prompts"),
        ("GET", "/api/status", "busy indicator: what runs now, how many wait, recent jobs"),
        ("POST", "/api/prompt", "tokens, per-token loss and top-k next tokens per position"),
        ("POST", "/api/generate", "a continuation with the sampling options (temperature, top_k, top_p, seed)"),
        ("POST", "/api/attention", "attention patterns [head, dest, src] of one layer"),
        ("GET", "/api/heads", "head detector scores (previous-token, duplicate-token, induction) per layer and head"),
        ("POST", "/api/lens", "logit lens: top tokens per layer at the last position, the answer's probability per layer and position"),
        ("POST", "/api/dla", "direct logit attribution of answer − wrong at the last position, per component or head"),
        ("POST", "/api/jobs/patching", "starts an activation- or attribution-patching sweep as a background job"),
        ("POST", "/api/jobs/graph", "starts an attribution graph of the prompt (needs --transcoders) as a background job"),
        ("GET", "/api/jobs/{id}", "a job's state, progress and result"),
        ("GET", "/api/jobs/{id}/events", "a job's progress as server-sent events (event: progress, then done)"),
        ("DELETE", "/api/jobs/{id}", "cancels a job; its memory is freed"),
        ("GET", "/api/jobs/{id}/viewer", "a finished graph job's viewer page (HTML)"),
        ("GET", "/api/jobs/{id}/graph.json", "a finished graph job's graph.json (circuit-tracer's frontend format)"),
        ("POST", "/api/features", "an SAE's features active on each token (top-k), and one feature's activation per token"),
        ("POST", "/api/features/page", "a feature page: density, activation histogram, top/bottom logits, top contexts, quantile intervals"),
        ("POST", "/api/steer", "generations with and without a steering vector (an SAE feature or a contrastive direction)"),
        ("GET", "/api/openapi.json", "this API as an OpenAPI 3.0 document"),
    ];

    void Map(WebApplication app)
    {
        app.MapGet("/", Serve(IndexHtml, "text/html; charset=utf-8", page: true));
        app.MapGet("/app.js", Serve(AppJs, "text/javascript; charset=utf-8"));
        app.MapGet("/app.css", Serve(AppCss, "text/css; charset=utf-8"));
        app.MapGet("/api/openapi.json", Serve(OpenApi, "application/json; charset=utf-8"));
        app.MapGet("/api/model", http => WriteJson(http, Info(), ExplorerJsonContext.Default.ModelInfo));
        app.MapGet("/api/status", http => WriteJson(http, Status(), ExplorerJsonContext.Default.StatusInfo));
        app.MapPost("/api/prompt", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.PromptRequest);
            var ids = _model.Tokens(request, _options);
            int k = TopK(request.TopK);
            await WriteJson(http, await _model.Lane.RunAsync("prompt", () => PromptAnalysis(ids, k), http.RequestAborted), ExplorerJsonContext.Default.PromptAnswer);
        });
        app.MapPost("/api/generate", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.GenerateRequest);
            var model = _model.RequireDecoder("Generation");
            var ids = _model.Tokens(request, _options);
            int n = NewTokens(request.MaxNewTokens, ids.Length);
            if (request.Temperature < 0) throw new ExplorerRequestException($"\"temperature\" must be 0 (greedy) or more; got {request.Temperature}.");
            if (request.TopK is int tk && tk < 1) throw new ExplorerRequestException($"\"top_k\" must be at least 1; got {tk}.");
            if (request.TopP is double tp && tp is <= 0 or > 1) throw new ExplorerRequestException($"\"top_p\" must be in (0, 1]; got {tp}.");
            var answer = await _model.Lane.RunAsync("generate", () =>
            {
                var sequence = model.Generate(tensor(ids).unsqueeze(0), n, request.Temperature, request.TopK, request.TopP, request.Seed); // [1, pos + n]
                long[] added = sequence[0, ids.Length..].data<long>().ToArray();
                return new GenerateAnswer(ids, added, _model.Strings(added), _model.Decode(added));
            }, http.RequestAborted);
            await WriteJson(http, answer, ExplorerJsonContext.Default.GenerateAnswer);
        });
        app.MapPost("/api/attention", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.AttentionRequest);
            var ids = _model.Tokens(request, _options);
            int layer = Layer(request.Layer);
            await WriteJson(http, await _model.Lane.RunAsync("attention", () => Attention(ids, layer), http.RequestAborted), ExplorerJsonContext.Default.AttentionAnswer);
        });
        app.MapGet("/api/heads", async http =>
        {
            var model = _model.RequireDecoder("Head detector scores");
            await WriteJson(http, await _model.Lane.RunAsync("head scores", () => HeadScores(model), http.RequestAborted), ExplorerJsonContext.Default.HeadScoresAnswer);
        });
        app.MapPost("/api/lens", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.LogitRequest);
            var model = _model.RequireDecoder("The logit lens");
            var ids = _model.Tokens(request, _options);
            var (answer, wrong) = (AnswerToken(request.Answer, "answer"), AnswerToken(request.Wrong, "wrong"));
            await WriteJson(http, await _model.Lane.RunAsync("logit lens", () => Lens(model, ids, answer, wrong), http.RequestAborted), ExplorerJsonContext.Default.LensAnswer);
        });
        app.MapPost("/api/dla", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.LogitRequest);
            var model = _model.RequireDecoder("Direct logit attribution");
            var ids = _model.Tokens(request, _options);
            var (answer, wrong) = (AnswerToken(request.Answer, "answer"), AnswerToken(request.Wrong, "wrong"));
            await WriteJson(http, await _model.Lane.RunAsync("direct logit attribution", () => Dla(model, ids, answer, wrong, request.PerHead), http.RequestAborted), ExplorerJsonContext.Default.DlaAnswer);
        });
        app.MapPost("/api/jobs/patching", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.PatchingRequest);
            var job = StartPatching(request);
            http.Response.StatusCode = 202;
            await WriteJson(http, new JobAnswer(job.Info, null, null), ExplorerJsonContext.Default.JobAnswer);
        });
        app.MapPost("/api/jobs/graph", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.GraphRequest);
            var job = StartGraph(request);
            http.Response.StatusCode = 202;
            await WriteJson(http, new JobAnswer(job.Info, null, null), ExplorerJsonContext.Default.JobAnswer);
        });
        app.MapGet("/api/jobs/{id}", async http =>
        {
            var job = Job(http);
            await WriteJson(http, new JobAnswer(job.Info, job.Patching, job.Graph), ExplorerJsonContext.Default.JobAnswer);
        });
        app.MapDelete("/api/jobs/{id}", async http =>
        {
            var job = Job(http);
            job.Cancellation.Cancel();
            await WriteJson(http, new JobAnswer(job.Info, null, null), ExplorerJsonContext.Default.JobAnswer);
        });
        app.MapGet("/api/jobs/{id}/events", http => Events(http, Job(http)));
        app.MapGet("/api/jobs/{id}/viewer", async http =>
        {
            var job = Job(http);
            if (job.Kind != "graph" || job.State != "done" || job.GraphPage is not { } html)
                throw new ExplorerRequestException($"Job {job.Id} is not a finished graph ({job.Kind}, {job.State}).", 404);
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.Headers.CacheControl = "no-store";
            await http.Response.WriteAsync(html, http.RequestAborted);
        });
        app.MapGet("/api/jobs/{id}/graph.json", async http =>
        {
            var job = Job(http);
            if (job.Kind != "graph" || job.State != "done" || job.GraphJson is not { } json)
                throw new ExplorerRequestException($"Job {job.Id} is not a finished graph ({job.Kind}, {job.State}).", 404);
            http.Response.ContentType = "application/json; charset=utf-8";
            http.Response.Headers.ContentDisposition = $"attachment; filename=\"graph-{job.Id}.json\"";
            await http.Response.WriteAsync(json, http.RequestAborted);
        });
        app.MapPost("/api/features", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.FeaturesRequest);
            var sae = Sae(request.Sae);
            var ids = _model.Tokens(request, _options);
            int k = TopK(request.TopK);
            if (request.Feature is int f) CheckFeature(sae, f);
            await WriteJson(http, await _model.Lane.RunAsync("features", () => Features(request.Sae, sae, ids, k, request.Feature), http.RequestAborted), ExplorerJsonContext.Default.FeaturesAnswer);
        });
        app.MapPost("/api/features/page", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.FeaturePageRequest);
            var sae = Sae(request.Sae);
            CheckFeature(sae, request.Feature);
            await WriteJson(http, await _model.Lane.RunAsync("feature page", () => FeaturePage(request.Sae, sae, request.Feature), http.RequestAborted), ExplorerJsonContext.Default.FeaturePageAnswer);
        });
        app.MapPost("/api/steer", async http =>
        {
            var request = await ReadJson(http, ExplorerJsonContext.Default.SteerRequest);
            await WriteJson(http, await Steer(request, http.RequestAborted), ExplorerJsonContext.Default.SteerAnswer);
        });
        app.MapFallback(http => Refuse(http, 404, $"No such page or endpoint: {http.Request.Method} {http.Request.Path}. The API is listed at /api/openapi.json."));
    }

    // ---- what the model is, and what runs ----

    ModelInfo Info()
    {
        var c = _model.Config;
        string? graphNote = _model.GraphModel is not null ? null
            : _model.IsEncoder ? "Attribution graphs need a decoder with transcoders."
            : _model.Config.AttnOnly ? $"{_model.Name} is attention-only: an attribution graph replaces a model's MLPs with transcoders, and it has none. Start the Explorer on a model with MLPs and --transcoders DIR (e.g. from `sharplens transcoders train`)."
            : "No transcoders were loaded: start the Explorer with --transcoders DIR (circuit-tracer's layout, e.g. from `sharplens transcoders train`) to compute attribution graphs.";
        return new ModelInfo(_model.Name, _model.IsEncoder ? "encoder" : "decoder", c.AttnOnly, c.NLayers, c.NHeads, c.DModel, c.DVocab, c.NCtx, _model.HasTokenizer,
            [.. _model.Saes.Select((s, i) => new SaeInfo(i, s.Name, s.Hook, s.Sae.Config.DSae, s.Sae.Config.Architecture.ToString()))],
            _model.GraphModel is not null, graphNote, _model.TranscodersDescription,
            new LimitsInfo(_options.MaxPromptChars, Math.Min(_options.MaxPromptTokens, c.NCtx), _options.MaxBodyBytes, _options.MaxNewTokens, _options.MaxTopK),
            _model.Examples, _model.CorpusDescription, _model.Contexts.Source);
    }

    StatusInfo Status() => new(_model.Lane.Running is not null, _model.Lane.Running, _model.Lane.Waiting, _model.Lane.Completed, _jobs.Recent);

    // ---- checks of request fields ----

    int TopK(int k) => k >= 1 && k <= _options.MaxTopK ? k : throw new ExplorerRequestException($"\"top_k\" must be in [1, {_options.MaxTopK}]; got {k}.");

    int Layer(int layer) => layer >= 0 && layer < _model.Config.NLayers ? layer
        : throw new ExplorerRequestException($"\"layer\" {layer} does not exist: {_model.Name} has layers 0–{_model.Config.NLayers - 1}.");

    int NewTokens(int n, int promptLength)
    {
        if (n < 1 || n > _options.MaxNewTokens) throw new ExplorerRequestException($"\"max_new_tokens\" must be in [1, {_options.MaxNewTokens}]; got {n}.");
        if (promptLength + n > _model.Config.NCtx)
            throw new ExplorerRequestException($"The prompt ({promptLength} tokens) and {n} new tokens exceed the model's context of {_model.Config.NCtx}; ask for at most {Math.Max(0, _model.Config.NCtx - promptLength)} new tokens.");
        return n;
    }

    long? AnswerToken(string? text, string field) => string.IsNullOrEmpty(text) ? null : _model.Token(text, field);

    ExplorerSae Sae(int index) => index >= 0 && index < _model.Saes.Count ? _model.Saes[index]
        : throw new ExplorerRequestException(_model.Saes.Count == 0
            ? "No SAE was loaded: start the Explorer with --sae DIR (an SAELens folder: cfg.json + sae_weights.safetensors) to see features."
            : $"\"sae\" {index} does not exist: the loaded SAEs are 0–{_model.Saes.Count - 1}.");

    static void CheckFeature(ExplorerSae sae, int feature)
    {
        if (feature < 0 || feature >= sae.Sae.Config.DSae) throw new ExplorerRequestException($"\"feature\" {feature} does not exist: {sae.Name} has features 0–{sae.Sae.Config.DSae - 1}.");
    }

    ExplorerJob Job(HttpContext http)
    {
        string id = (string)http.Request.RouteValues["id"]!;
        return _jobs.Find(id) ?? throw new ExplorerRequestException($"No job {id} (finished jobs are kept for the last {_options.KeptJobs}).", 404);
    }

    // ---- the techniques ----

    PromptAnswer PromptAnalysis(long[] ids, int k)
    {
        var strings = _model.Strings(ids);
        if (_model.Decoder is not { } model)
            return new PromptAnswer(ids, strings, new double?[ids.Length], null, [], $"Per-token loss and next-token predictions need a decoder; {_model.Name} is an encoder. The Attention page works for it.");
        var tokens = tensor(ids).unsqueeze(0); // [1, pos]
        var logits = model.Run(tokens); // [1, pos, d_vocab]
        var loss = HookedTransformer.LossPerToken(logits, tokens)[0].to(ScalarType.Float64).data<double>().ToArray(); // [pos - 1]: loss[t − 1] predicts token t
        var (probs, top) = logits[0].softmax(-1).topk(Math.Min(k, _model.Config.DVocab)); // [pos, k]
        var p = probs.to(ScalarType.Float64).data<double>().ToArray();
        var t = top.data<long>().ToArray();
        int kk = (int)probs.shape[1];
        var perPosition = Enumerable.Range(0, ids.Length).Select(pos => (IReadOnlyList<TokenProb>)[.. Enumerable.Range(0, kk)
            .Select(j => new TokenProb(t[pos * kk + j], _model.Text(t[pos * kk + j]), p[pos * kk + j]))]).ToList();
        double?[] perToken = [null, .. loss.Select(v => (double?)v)];
        return new PromptAnswer(ids, strings, perToken, loss.Length == 0 ? null : loss.Average(), perPosition, null);
    }

    AttentionAnswer Attention(long[] ids, int layer)
    {
        string hook = $"blocks.{layer}.attn.hook_pattern";
        var (_, cache) = _model.Module.RunWithCache(tensor(ids).unsqueeze(0), [hook]);
        using (cache)
        {
            var pattern = cache[hook][0].to(ScalarType.Float32).contiguous(); // [head, dest, src]
            int heads = (int)pattern.shape[0], pos = ids.Length;
            var flat = pattern.data<float>().ToArray();
            var grid = new float[heads][][];
            for (int h = 0; h < heads; h++)
            {
                grid[h] = new float[pos][];
                for (int d = 0; d < pos; d++) grid[h][d] = flat.AsSpan((h * pos + d) * pos, pos).ToArray();
            }
            return new AttentionAnswer(layer, _model.Strings(ids), grid);
        }
    }

    /// <summary>Scores on 16 repeated random sequences (seed 0), as `sharplens heads` computes them.</summary>
    HeadScoresAnswer HeadScores(HookedTransformer model)
    {
        var c = model.Config;
        int half = Math.Min(20, (c.NCtx - (c.BosTokenId is null ? 0 : 1)) / 2);
        var tokens = HeadDetectors.RepeatedRandomTokens(c, half, 16, new Generator(0)); // [16, 2·half (+1)]
        var scores = HeadDetectors.ScoreHeads(model, tokens);
        return new HeadScoresAnswer(scores.Layers, scores.Heads, Jagged(scores.PreviousToken), Jagged(scores.DuplicateToken), Jagged(scores.Induction),
            $"16 repeated random sequences of {tokens.shape[1]} tokens (seed 0)");
    }

    static double[][] Jagged(double[,] a) => [.. Enumerable.Range(0, a.GetLength(0)).Select(i => Enumerable.Range(0, a.GetLength(1)).Select(j => a[i, j]).ToArray())];

    /// <summary>The model's top prediction at the last position, for an answer nobody named.</summary>
    static long TopPrediction(HookedTransformer model, Tensor tokens) => model.Run(tokens)[0, -1].argmax().item<long>();

    LensAnswer Lens(HookedTransformer model, long[] ids, long? answer, long? wrong)
    {
        var tokens = tensor(ids).unsqueeze(0); // [1, pos]
        using var lens = LogitLens.Run(model, tokens);
        int last = ids.Length - 1;
        long a = answer ?? lens.TopTokens(lens.Rows - 1, last, 1)[0].Token;
        var top = Enumerable.Range(0, lens.Rows).Select(r => (IReadOnlyList<TokenProb>)[.. lens.TopTokens(r, last, 5).Select(t => new TokenProb(t.Token, _model.Text(t.Token), t.Probability))]).ToList();
        var answers = full([1, ids.Length], a, ScalarType.Int64);
        var logProbs = lens.TargetLogProbs(answers)[.., 0].to(ScalarType.Float64); // [rows, pos]
        var prob = Jagged2(logProbs.exp());
        var ranks = lens.TargetRanks(answers)[.., 0, last].to(ScalarType.Int32).data<int>().ToArray(); // [rows]
        double[]? diff = null;
        if (wrong is long w)
        {
            var wrongs = full([1, ids.Length], w, ScalarType.Int64);
            diff = (logProbs[.., last] - lens.TargetLogProbs(wrongs)[.., 0, last].to(ScalarType.Float64)).data<double>().ToArray(); // [rows]
        }
        return new LensAnswer(lens.RowNames, _model.Strings(ids), last, a, _model.Text(a), wrong, wrong is long ww ? _model.Text(ww) : null, top, prob, ranks, diff);
    }

    static double[][] Jagged2(Tensor t)
    {
        var c = t.contiguous();
        int rows = (int)c.shape[0], cols = (int)c.shape[1];
        var flat = c.data<double>().ToArray();
        return [.. Enumerable.Range(0, rows).Select(r => flat.AsSpan(r * cols, cols).ToArray())];
    }

    DlaAnswer Dla(HookedTransformer model, long[] ids, long? answer, long? wrong, bool perHead)
    {
        var tokens = tensor(ids).unsqueeze(0); // [1, pos]
        var (logits, cache) = DirectLogitAttribution.RunWithCache(model, tokens);
        using (cache)
        {
            var last = logits[0, -1]; // [d_vocab]
            var ranked = last.argsort(descending: true);
            long a = answer ?? ranked[0].item<long>();
            // No wrong token named: the runner-up (the top prediction when the answer is something else).
            long w = wrong ?? (ranked[0].item<long>() == a ? ranked[1].item<long>() : ranked[0].item<long>());
            var answers = tensor(new[] { a });
            var wrongs = tensor(new[] { w });
            using var stack = perHead ? DirectLogitAttribution.PerHeadResidual(model, cache) : DirectLogitAttribution.DecomposedResidual(model, cache);
            var attribution = DirectLogitAttribution.Project(model, stack, cache, answers, wrongs);
            var values = attribution.For(0);
            double diff = DirectLogitAttribution.LogitDifference(logits, answers, wrongs)[0];
            return new DlaAnswer(attribution.Names, values, values.Sum(), diff, a, _model.Text(a), w, _model.Text(w));
        }
    }

    static readonly string[] PatchableComponents = ["resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out", "z"];

    ExplorerJob StartPatching(PatchingRequest request)
    {
        var model = _model.RequireDecoder("Patching");
        if (!PatchableComponents.Contains(request.Component))
            throw new ExplorerRequestException($"\"component\" '{request.Component}' is not patchable here; use one of {string.Join(", ", PatchableComponents)}.");
        if (model.Config.AttnOnly && request.Component is "mlp_out" or "resid_mid")
            throw new ExplorerRequestException($"\"component\" {request.Component}: {_model.Name} is attention-only (no MLPs); use resid_pre, resid_post, attn_out or z.");
        if (request.Method is not ("activation" or "attribution")) throw new ExplorerRequestException($"\"method\" '{request.Method}' is not known; use activation or attribution.");
        if (request.CellsPerPass is int cpp && cpp < 1) throw new ExplorerRequestException($"\"cells_per_pass\" must be at least 1; got {cpp}.");
        var clean = _model.Tokens(request.Clean ?? "", _options, "clean");
        var corrupted = _model.Tokens(request.Corrupted ?? "", _options, "corrupted");
        if (clean.Length != corrupted.Length)
            throw new ExplorerRequestException($"\"clean\" has {clean.Length} tokens but \"corrupted\" has {corrupted.Length}: patching needs prompts of the same length, position by position.");
        long answer = _model.Token(request.Answer ?? "", "answer"), wrong = _model.Token(request.Wrong ?? "", "wrong");
        string component = request.Component, method = request.Method;
        return _jobs.Start($"{method} patching", job =>
        {
            using var pairs = PromptPairs.FromTokens(clean, corrupted, answer, wrong);
            var options = new PatchingOptions { Progress = new JobProgress(job), MaxBatchRows = request.CellsPerPass };
            using var result = method == "activation"
                ? ActivationPatching.Sweep(model, pairs, component, options: options)
                : AttributionPatching.Sweep(model, pairs, component, options: options);
            var table = result.ToArray2D();
            int rows = table.GetLength(0), cols = table.GetLength(1);
            var values = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, cols).Select(c => table[r, c]).ToArray()).ToArray();
            var cleanStrings = _model.Strings(clean);
            IReadOnlyList<string> columns = component == "z"
                ? [.. Enumerable.Range(0, cols).Select(h => $"H{h}")]
                : [.. cleanStrings.Select((s, p) => $"{p}: {s}")];
            job.Report(Math.Max(job.Total, 1), Math.Max(job.Total, 1), "done");
            return (new PatchingAnswer(component, method, result.Dims, values, [.. Enumerable.Range(0, rows).Select(l => $"L{l}")], columns,
                result.CleanMetric, result.CorruptedMetric, result.ForwardPasses, cleanStrings, _model.Strings(corrupted)), null);
        });
    }

    /// <summary>A sweep's progress into its job; throws there when the job was cancelled, which stops the sweep.</summary>
    sealed class JobProgress(ExplorerJob job) : IProgress<PatchingProgress>
    {
        public void Report(PatchingProgress p) => job.Report(p.CellsDone, p.Cells, $"{p.Sweep}: {p.CellsDone}/{p.Cells} cells, {p.ForwardPasses} forward passes");
    }

    ExplorerJob StartGraph(GraphRequest request)
    {
        var rm = _model.GraphModel ?? throw new ExplorerRequestException(Info().GraphNote!);
        var ids = _model.Tokens(request, _options);
        if (request.MaxFeatureNodes is int m && m < 1) throw new ExplorerRequestException($"\"max_feature_nodes\" must be at least 1; got {m}.");
        if (request.BatchSize is int b && b < 1) throw new ExplorerRequestException($"\"batch_size\" must be at least 1; got {b}.");
        var files = new GraphFileOptions { NodeThreshold = request.NodeThreshold, EdgeThreshold = request.EdgeThreshold, Slug = "explore", WriteViewer = false };
        var attribution = new AttributionOptions { MaxFeatureNodes = request.MaxFeatureNodes, BatchSize = request.BatchSize ?? 512, MaxNLogits = request.MaxNLogits, DesiredLogitProb = request.DesiredLogitProb };
        GraphFiles.CheckSettings(attribution, files); // a bad option is a 400 now, not a failed job later
        return _jobs.Start("graph", job =>
        {
            job.Report(0, 1, "attributing: one forward pass, then backward passes in batches");
            string folder = Path.Combine(Path.GetTempPath(), $"sharplens-explore-graph-{job.Id}");
            try
            {
                var summary = GraphFiles.AttributeAndWrite(rm, tensor(ids).unsqueeze(0), folder, attribution with { Progress = new AttributionProgress(job) }, files with { Slug = $"explore-{job.Id}" });
                string json = File.ReadAllText(summary.JsonPath);
                job.AttachGraph(json, GraphViewer.Render(json, source: $"graph of job {job.Id}"));
                job.Report(Math.Max(job.Total, 1), Math.Max(job.Total, 1), $"{job.Total} rows attributed ({summary.Features} features and the logits), {summary.KeptNodes} nodes kept");
                return (null, new GraphAnswer(summary.ActiveFeatures, summary.Features, summary.Nodes, summary.KeptNodes, summary.KeptLinks,
                    summary.ReplacementScore, summary.CompletenessScore, $"/api/jobs/{job.Id}/viewer", $"/api/jobs/{job.Id}/graph.json"));
            }
            finally
            {
                if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
            }
        });
    }

    /// <summary>The attribution's rows into its job (synchronously, on the worker: a cancelled job's next report throws there).</summary>
    sealed class AttributionProgress(ExplorerJob job) : IProgress<(int Done, int Total)>
    {
        public void Report((int Done, int Total) p) => job.Report(p.Done, p.Total, $"attributing: {p.Done}/{p.Total} rows");
    }

    /// <summary>Server-sent events: the job's state at once and at every change (event "progress"), ending with "done".</summary>
    static async Task Events(HttpContext http, ExplorerJob job)
    {
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-store";
        var ct = http.RequestAborted;
        while (!ct.IsCancellationRequested)
        {
            var changed = job.Changed; // taken before the snapshot, so no update falls between them
            var info = job.Info;
            bool finished = ExplorerJob.IsFinishedState(info.State); // from the snapshot sent, not a later read of the job
            string data = JsonSerializer.Serialize(info, ExplorerJsonContext.Default.JobInfo);
            await http.Response.WriteAsync($"event: {(finished ? "done" : "progress")}\ndata: {data}\n\n", ct);
            await http.Response.Body.FlushAsync(ct);
            if (finished) return;
            await Task.WhenAny(changed, Task.Delay(TimeSpan.FromSeconds(15), ct));
        }
    }

    FeaturesAnswer Features(int index, ExplorerSae sae, long[] ids, int k, int? feature)
    {
        var (_, cache) = _model.Module.RunWithCache(tensor(ids).unsqueeze(0), [sae.Hook]);
        using (cache)
        {
            var input = cache[sae.Hook][0]; // [pos, d_in] (hook_z's heads flattened)
            input = input.reshape(input.shape[0], -1);
            var acts = sae.Sae.Encode(input).to(ScalarType.Float32); // [pos, d_sae]
            var (values, indices) = acts.topk(Math.Min(k, sae.Sae.Config.DSae)); // [pos, k]
            var v = values.contiguous().data<float>().ToArray();
            var i = indices.contiguous().data<long>().ToArray();
            int kk = (int)values.shape[1];
            var perToken = Enumerable.Range(0, ids.Length).Select(p => (IReadOnlyList<FeatureAct>)[.. Enumerable.Range(0, kk)
                .Where(j => v[p * kk + j] > 0).Select(j => new FeatureAct((int)i[p * kk + j], v[p * kk + j]))]).ToList();
            float[]? one = feature is int f ? acts[.., f].contiguous().data<float>().ToArray() : null;
            return new FeaturesAnswer(index, sae.Hook, _model.Strings(ids), perToken, one);
        }
    }

    /// <summary>The library's feature dashboard for one feature over the Explorer's contexts, as a page's data.</summary>
    FeaturePageAnswer FeaturePage(int index, ExplorerSae sae, int feature)
    {
        // An encoder's rows carry [PAD]: its reader masks them, so every token reads as in its unpadded sequence.
        var reader = _model.Encoder is { } encoder ? EncoderActivations.Reader(encoder, null, sae.Hook) : ModelActivations.Reader(_model.Module, sae.Hook);
        var W_U = _model.Decoder is { } d && sae.Sae.Config.OutputDim == _model.Config.DModel ? d.unembed.W_U.detach() : null;
        var dashboard = FeatureDashboard.Build(reader, x => sae.Sae.Encode(x), _model.Corpus,
            ids => _model.Strings([.. ids.Select(i => (long)i)]),
            new FeatureDashboardOptions { Features = [feature], Intervals = 10, WindowBefore = 5, WindowAfter = 5, ExcludedTokenIds = _model.Contexts.ExcludedTokenIds },
            W_dec: W_U is null ? null : sae.Sae.W_dec.detach(), W_U: W_U, title: sae.Name);
        var f = dashboard.Features[0];
        double[] centres = [];
        long[] heights = [];
        if (f.Histogram is { } h)
        {
            double width = (h.Max - h.Min) / h.Counts.Length;
            centres = [.. Enumerable.Range(0, h.Counts.Length).Select(b => h.Min + (b + 0.5) * width)];
            heights = [.. h.Counts];
        }
        static ContextInfo Context(ContextExample e) => new([.. e.Window.Select(t => t.Token)], [.. e.Window.Select(t => t.Activation)], e.Center, e.Activation);
        static IReadOnlyList<LogitEffectInfo>? Logits(IReadOnlyList<LogitEffect>? l) => l?.Select(x => new LogitEffectInfo(x.TokenId, x.Token, x.Value)).ToList();
        long fired = (long)Math.Round(f.Density * dashboard.TokensRead);
        return new FeaturePageAnswer(index, feature, sae.Hook, f.Density, f.MaxActivation, double.IsNaN(f.MeanWhenFiring) ? null : f.MeanWhenFiring,
            centres, heights, Logits(f.TopLogits), Logits(f.BottomLogits), [.. f.TopExamples.Select(Context)],
            [.. f.Intervals.Select(i => new IntervalInfo(i.Low, i.High, i.Count, fired == 0 ? 0 : (double)i.Count / fired, [.. i.Samples.Select(Context)]))],
            dashboard.TokensRead, _model.CorpusDescription, _model.Contexts.Source, dashboard.LogitNote);
    }

    async Task<SteerAnswer> Steer(SteerRequest request, CancellationToken ct)
    {
        var model = _model.RequireDecoder("Steering");
        var ids = _model.Tokens(request, _options);
        int n = NewTokens(request.MaxNewTokens, ids.Length);
        string hook = request.Hook ?? $"blocks.{Layer(request.Layer)}.hook_resid_pre";
        if (!model.HookDict.ContainsKey(hook)) throw new ExplorerRequestException($"\"hook\" '{hook}' is not a hook of {_model.Name}; e.g. blocks.0.hook_resid_pre.");
        var where = request.Positions switch
        {
            "all" => SteeringPositions.All,
            "last" => SteeringPositions.Last,
            var other => throw new ExplorerRequestException($"\"positions\" '{other}' is not known: use all or last."),
        };
        if (request.Temperature < 0) throw new ExplorerRequestException($"\"temperature\" must be 0 (greedy) or more; got {request.Temperature}.");
        bool byFeature = request.Feature is not null, byContrast = request.Positive is not null || request.Negative is not null;
        if (byFeature == byContrast) throw new ExplorerRequestException("Give either \"feature\" (with \"sae\") or \"positive\" and \"negative\" prompts, not both.");
        ExplorerSae? sae = null;
        List<long[]> plus = [], minus = [];
        if (byFeature)
        {
            sae = Sae(request.Sae ?? 0);
            CheckFeature(sae, request.Feature!.Value);
            if (sae.Sae.Config.OutputDim != _model.Config.DModel || !hook.Contains("resid", StringComparison.Ordinal))
                throw new ExplorerRequestException($"Feature {request.Feature} of {sae.Name} writes {sae.Sae.Config.OutputDim} dimensions; steer with it at a residual-stream hook (d_model = {_model.Config.DModel}).");
        }
        else
        {
            if (string.IsNullOrWhiteSpace(request.Positive) || string.IsNullOrWhiteSpace(request.Negative))
                throw new ExplorerRequestException("Contrastive steering needs both \"positive\" and \"negative\" prompts (one per line).");
            plus = [.. request.Positive!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => _model.Tokens(p, _options, "positive"))];
            minus = [.. request.Negative!.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => _model.Tokens(p, _options, "negative"))];
        }
        return await _model.Lane.RunAsync("steering", () =>
        {
            Tensor vector; // [d_model]
            string source;
            if (sae is not null)
            {
                vector = sae.Sae.W_dec.detach()[request.Feature!.Value].to(ScalarType.Float32); // [d_out]
                source = $"{sae.Name} feature {request.Feature} (decoder direction)";
            }
            else
            {
                var (pt, pm) = Padded(plus);
                var (nt, nm) = Padded(minus);
                vector = Steering.ContrastiveVector(model, hook, pt, nt, pm, nm);
                source = $"mean({plus.Count} positive) − mean({minus.Count} negative) at {hook}, last token";
            }
            var tokens = tensor(ids).unsqueeze(0); // [1, pos]
            var plain = model.Generate(tokens, n, request.Temperature, seed: request.Seed)[0, ids.Length..].data<long>().ToArray();
            long[] steered;
            using (Steering.Apply(model, hook, vector, request.Coefficient, where))
                steered = model.Generate(tokens, n, request.Temperature, seed: request.Seed)[0, ids.Length..].data<long>().ToArray();
            return new SteerAnswer(hook, request.Coefficient, vector.norm().item<float>(), source, _model.Strings(ids),
                _model.Strings(plain), _model.Strings(steered), _model.Decode(plain), _model.Decode(steered));
        }, ct);
    }

    /// <summary>Rows of ids padded into [n, longest] tokens and a mask (1 = real token).</summary>
    static (Tensor Tokens, Tensor Mask) Padded(List<long[]> rows)
    {
        int longest = rows.Max(r => r.Length);
        var tokens = zeros([rows.Count, longest], ScalarType.Int64);
        var mask = zeros([rows.Count, longest], ScalarType.Int64);
        for (int i = 0; i < rows.Count; i++) { tokens[i, ..rows[i].Length] = tensor(rows[i]); mask[i, ..rows[i].Length] = 1; }
        return (tokens, mask);
    }
}
