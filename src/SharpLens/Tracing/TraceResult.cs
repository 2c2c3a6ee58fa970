using SharpLens.Interop;
using static TorchSharp.torch;

namespace SharpLens.Tracing;

/// <summary>
/// What a trace saved, by name: one tensor per step it was saved at (one, without generation), plus the generated
/// tokens ("generated") when the plan generates. Owns its tensors; dispose it when done.
/// </summary>
public sealed class TraceResult : IDisposable
{
    readonly Dictionary<string, List<(int Step, Tensor Value)>> _saved;

    internal TraceResult(Dictionary<string, List<(int Step, Tensor Value)>> saved, Tensor? generated, bool stopped)
    {
        _saved = saved;
        Generated = generated;
        Stopped = stopped;
    }

    /// <summary>The saved names, in the order the plan saves them.</summary>
    public IReadOnlyCollection<string> Names => _saved.Keys;

    /// <summary>[batch, pos + new] tokens of a generation (prompt included); null without one.</summary>
    public Tensor? Generated { get; }

    /// <summary>Whether a stop op ended the forward pass (or the generation) early.</summary>
    public bool Stopped { get; }

    public bool Contains(string name) => _saved.ContainsKey(name);

    /// <summary>The value saved under <paramref name="name"/>; for a value saved at several steps, use <see cref="Steps"/>.</summary>
    public Tensor this[string name]
    {
        get
        {
            var list = Get(name);
            if (list.Count != 1)
                throw new PlanValidationException($"'{name}' was saved at {list.Count} generation steps ({string.Join(", ", list.Select(s => s.Step))}); read them with Steps(\"{name}\").");
            return list[0].Value;
        }
    }

    /// <summary>The value saved under <paramref name="name"/> at each step, in step order.</summary>
    public IReadOnlyList<Tensor> Steps(string name) => [.. Get(name).Select(s => s.Value)];

    /// <summary>The steps at which <paramref name="name"/> was saved.</summary>
    public IReadOnlyList<int> StepIndices(string name) => [.. Get(name).Select(s => s.Step)];

    bool _disposed;

    List<(int Step, Tensor Value)> Get(string name) =>
        _disposed ? throw new ObjectDisposedException(nameof(TraceResult), $"The trace result holding '{name}' was disposed; read values before disposing it (or clone them).")
        : _saved.TryGetValue(name, out var list) ? list
        : throw new PlanValidationException($"Nothing was saved as '{name}'. Saved: {(_saved.Count == 0 ? "nothing" : string.Join(", ", _saved.Keys))}.");

    /// <summary>
    /// Every saved value as named arrays: "name" for a value saved once, "name.step{k}" for each step of one saved at
    /// several, and "generated" for a generation's tokens.
    /// </summary>
    public IEnumerable<KeyValuePair<string, Tensor>> Arrays()
    {
        foreach (var (name, list) in _saved)
        {
            if (list.Count == 1) yield return new(name, list[0].Value);
            else foreach (var (step, value) in list) yield return new($"{name}.step{step}", value);
        }
        if (Generated is not null) yield return new("generated", Generated);
    }

    /// <summary>Writes <see cref="Arrays"/> as a NumPy .npz archive (atomically).</summary>
    public void SaveNpz(string path) => NumpyFiles.SaveNpz(path, Arrays().Select(kv => new KeyValuePair<string, Tensor>(kv.Key,
        kv.Value.dtype == ScalarType.BFloat16 ? kv.Value.to(ScalarType.Float32) : kv.Value)));

    public void Dispose()
    {
        foreach (var list in _saved.Values) foreach (var (_, t) in list) t.Dispose();
        _saved.Clear();
        Generated?.Dispose();
        _disposed = true;
    }
}
