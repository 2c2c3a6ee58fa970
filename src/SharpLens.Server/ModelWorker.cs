using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using SharpLens.Tracing;
using TorchSharp;

namespace SharpLens.Server;

/// <summary>
/// One served model and the one thread that runs its plans, first come first served. A model's hooks belong to the
/// model, so two runs on it at once would see each other's hooks: runs on one model are serial (as NDIF's are), and
/// several models run side by side.
/// </summary>
sealed class ModelWorker : IDisposable
{
    public sealed class Job(TracePlan plan, ApiKey user, CancellationToken clientGone)
    {
        public TracePlan Plan { get; } = plan;
        public ApiKey User { get; } = user;
        public CancellationToken ClientGone { get; } = clientGone;
        public Channel<RunEvent> Events { get; } = Channel.CreateUnbounded<RunEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    }

    readonly BlockingCollection<Job> _queue;
    readonly Thread _thread;
    readonly TraceServerOptions _options;
    readonly Action<Job> _finished;
    long _completed, _timedOut, _liveTensorsAfterLastRun, _liveTensorsBeforeLastRun;

    public string Name { get; }
    public TraceTarget Target { get; }
    public TraceLayout Layout { get; }

    public ModelWorker(string name, TraceTarget target, TraceServerOptions options, Action<Job> finished)
    {
        (Name, Target, _options, _finished) = (name, target, options, finished);
        Layout = target.Layout with { Name = name }; // measured here, once, before any run can attach hooks
        _queue = new BlockingCollection<Job>(options.MaxQueueLength);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"sharplens-serve {name}" };
        _thread.Start();
    }

    public int Queued => _queue.Count;
    public long Completed => Interlocked.Read(ref _completed);
    public long TimedOut => Interlocked.Read(ref _timedOut);

    /// <summary>Live tensors on the worker thread before and after its last run: equal when the run freed all it made.</summary>
    public (long Before, long After) LiveTensors => (Interlocked.Read(ref _liveTensorsBeforeLastRun), Interlocked.Read(ref _liveTensorsAfterLastRun));

    /// <summary>Queues a job; false when the queue is full.</summary>
    public bool TryEnqueue(Job job, out int position)
    {
        position = _queue.Count;
        return _queue.TryAdd(job);
    }

    void Loop()
    {
        foreach (var job in _queue.GetConsumingEnumerable())
        {
            try { Execute(job); }
            finally
            {
                job.Events.Writer.TryComplete();
                _finished(job);
            }
        }
    }

    void Execute(Job job)
    {
        var writer = job.Events.Writer;
        if (job.ClientGone.IsCancellationRequested) return;
        writer.TryWrite(new RunEvent { Event = "running" });
        using var deadline = new CancellationTokenSource(_options.MaxRunTime);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, job.ClientGone);
        var clock = Stopwatch.StartNew();
        Interlocked.Exchange(ref _liveTensorsBeforeLastRun, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        try
        {
            using (var result = new LocalTraceBackend(Target, _options.Limits).Run(job.Plan, linked.Token))
            {
                foreach (var name in result.Names)
                {
                    var steps = result.StepIndices(name);
                    var values = result.Steps(name);
                    for (int i = 0; i < values.Count; i++) writer.TryWrite(RunEvent.OfTensor(name, steps[i], values[i]));
                }
                if (result.Generated is { } g) writer.TryWrite(RunEvent.OfTensor("generated", 0, g));
                writer.TryWrite(new RunEvent { Event = "done", Stopped = result.Stopped, Seconds = clock.Elapsed.TotalSeconds });
            }
            Interlocked.Increment(ref _completed);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            Interlocked.Increment(ref _timedOut);
            writer.TryWrite(new RunEvent
            {
                Event = "error", Status = 408,
                Message = $"The plan ran past the server's time limit of {_options.MaxRunTime.TotalSeconds:0.###} s and was stopped; its tensors were freed. Ask for less (fewer invokes, steps or ops) or run it locally.",
            });
        }
        catch (OperationCanceledException) { } // the client went away
        catch (SharpLensException e) { writer.TryWrite(new RunEvent { Event = "error", Status = 400, Message = e.Message }); }
        catch (Exception e) { writer.TryWrite(new RunEvent { Event = "error", Status = 500, Message = $"The run failed on the server: {e.GetType().Name}: {e.Message.Split('\n')[0]}" }); }
        finally
        {
            Interlocked.Exchange(ref _liveTensorsAfterLastRun, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join(TimeSpan.FromSeconds(30));
        _queue.Dispose();
    }
}
