using TorchSharp;

namespace SharpLens.Server.Explorer;

/// <summary>
/// One heavy job at a time on a model: a model's hooks belong to the model, and two forwards at once would each see
/// the other's hooks and double the memory. Requests wait in line (asynchronously: no thread is held while waiting);
/// <see cref="Running"/> and <see cref="Waiting"/> drive the pages' busy indicator.
/// </summary>
public sealed class ModelLane : IDisposable
{
    readonly SemaphoreSlim _gate = new(1, 1);
    int _waiting;
    long _completed;
    volatile string? _running;

    /// <summary>What runs now (e.g. "attention"), or null when idle.</summary>
    public string? Running => _running;
    public int Waiting => Volatile.Read(ref _waiting);
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>
    /// Waits its turn, then runs <paramref name="work"/> on a thread-pool thread inside a dispose scope with gradients
    /// off (a technique that needs them turns them on itself): every tensor the work makes is freed when it returns, so
    /// it must return plain values. <paramref name="stillWanted"/> cancels a wait (the client went away).
    /// </summary>
    public async Task<T> RunAsync<T>(string what, Func<T> work, CancellationToken stillWanted = default)
    {
        Interlocked.Increment(ref _waiting);
        try { await _gate.WaitAsync(stillWanted); }
        finally { Interlocked.Decrement(ref _waiting); }
        try
        {
            _running = what;
            return await Task.Run(() =>
            {
                using var scope = torch.NewDisposeScope();
                using var _ = torch.no_grad();
                return work();
            }, CancellationToken.None);
        }
        finally
        {
            _running = null;
            Interlocked.Increment(ref _completed);
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}
