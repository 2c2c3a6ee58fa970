using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using TorchSharp;

namespace SharpLens.Server.Explorer;

/// <summary>
/// One long piece of work (a patching sweep, a graph) running in the background: its progress, its cancellation, and
/// its result when done. Watchers wait on <see cref="Changed"/>, which completes at every update.
/// </summary>
public sealed class ExplorerJob
{
    TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly Stopwatch _clock = new();

    public ExplorerJob(string kind) => (Id, Kind) = (Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)), kind);

    public string Id { get; }
    public string Kind { get; }
    /// <summary>queued, running, done, cancelled or failed.</summary>
    public string State { get; private set; } = "queued";
    public int Done { get; private set; }
    public int Total { get; private set; }
    public string? Message { get; private set; }
    public string? Error { get; private set; }
    public PatchingAnswer? Patching { get; private set; }
    public GraphAnswer? Graph { get; private set; }
    /// <summary>A finished graph job's graph.json (circuit-tracer's frontend format) and its viewer page.</summary>
    public string? GraphJson { get; private set; }
    public string? GraphPage { get; private set; }
    /// <summary>Live tensors on the job's thread before and after its work: equal when the work freed all it made (cancelled or not).</summary>
    public long LiveBefore { get; private set; }
    public long LiveAfter { get; private set; }
    public CancellationTokenSource Cancellation { get; } = new();
    public bool IsFinished => IsFinishedState(State);
    public static bool IsFinishedState(string state) => state is "done" or "cancelled" or "failed";
    /// <summary>Completes at the next change of state or progress.</summary>
    public Task Changed => Volatile.Read(ref _changed).Task;

    public JobInfo Info => new(Id, Kind, State, Done, Total, Message, Error, LiveBefore, LiveAfter, _clock.Elapsed.TotalSeconds);

    void Signal() => Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Called on the worker thread as the work goes; throws when the job was cancelled, so the work stops there
    /// (its dispose scopes and hooks unwind as for any exception).</summary>
    public void Report(int done, int total, string? message = null)
    {
        (Done, Total, Message) = (done, total, message ?? Message);
        Signal();
        Cancellation.Token.ThrowIfCancellationRequested();
    }

    internal void Start()
    {
        LiveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        Cancellation.Token.ThrowIfCancellationRequested();
        _clock.Start();
        State = "running";
        Signal();
    }

    internal void Finish(string state, string? error = null, PatchingAnswer? patching = null, GraphAnswer? graph = null)
    {
        _clock.Stop();
        (Error, Patching, Graph) = (error, patching, graph);
        State = state;
        Signal();
    }

    /// <summary>Keeps a graph job's files with the job (so they go when the job is trimmed).</summary>
    internal void AttachGraph(string json, string page) => (GraphJson, GraphPage) = (json, page);

    internal void MeasureAfter() => LiveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
}

/// <summary>The Explorer's background jobs: started on the model's lane, kept until <see cref="ExplorerOptions.KeptJobs"/> newer ones finished.</summary>
public sealed class ExplorerJobs(ExplorerModel model, int kept)
{
    readonly ConcurrentDictionary<string, ExplorerJob> _jobs = new();
    readonly ConcurrentQueue<string> _order = new();

    public ExplorerJob? Find(string id) => _jobs.GetValueOrDefault(id);
    public IReadOnlyList<JobInfo> Recent => [.. _jobs.Values.Select(j => j.Info).OrderBy(j => j.State is "running" or "queued" ? 0 : 1)];

    /// <summary>Queues <paramref name="work"/>, which reports progress through the job and returns its result by calling Finish.</summary>
    public ExplorerJob Start(string kind, Func<ExplorerJob, (PatchingAnswer?, GraphAnswer?)> work)
    {
        var job = new ExplorerJob(kind);
        _jobs[job.Id] = job;
        _order.Enqueue(job.Id);
        Trim();
        _ = Run(job, work);
        return job;
    }

    async Task Run(ExplorerJob job, Func<ExplorerJob, (PatchingAnswer?, GraphAnswer?)> work)
    {
        try
        {
            await model.Lane.RunAsync(job.Kind, () =>
            {
                string state = "done";
                string? error = null;
                (PatchingAnswer?, GraphAnswer?) result = (null, null);
                try
                {
                    job.Start();
                    using (torch.NewDisposeScope()) result = work(job);
                }
                catch (OperationCanceledException) { state = "cancelled"; }
                catch (Exception e) { state = "failed"; error = ExplorerErrors.Describe(e); }
                job.MeasureAfter(); // the work's dispose scope has closed: whatever it made is freed by now
                job.Finish(state, error, result.Item1, result.Item2);
                return 0;
            }, job.Cancellation.Token);
        }
        catch (OperationCanceledException) { job.Finish("cancelled"); } // cancelled while waiting its turn
    }

    void Trim()
    {
        while (_order.Count > kept && _order.TryPeek(out var oldest) && _jobs.TryGetValue(oldest, out var job) && job.IsFinished)
        {
            _order.TryDequeue(out _);
            _jobs.TryRemove(oldest, out _);
        }
    }
}
