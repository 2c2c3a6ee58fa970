using SharpLens.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>
/// Fixed-length token contexts for activation stores and dashboards, packed as SAELens packs them: documents are
/// tokenized and concatenated into one stream (with the BOS token between documents when BOS is prepended), and the
/// stream is cut into pieces of <c>contextSize</c> tokens, each starting with BOS when asked. The last, short piece is
/// dropped, so every context has exactly <c>contextSize</c> tokens.
/// </summary>
public static class Contexts
{
    /// <summary>Contexts from documents tokenized by <paramref name="tokenizer"/>.</summary>
    public static IEnumerable<long[]> FromTexts(IEnumerable<string> documents, ModelTokenizer tokenizer, int contextSize, bool prependBos = true)
    {
        int? bos = prependBos
            ? tokenizer.BosTokenId ?? throw new ArgumentException($"prependBos is true but tokenizer {tokenizer.Name} has no BOS token; pass prependBos: false.", nameof(prependBos))
            : null;
        return Pack(documents.Select(d => tokenizer.Encode(d).Select(i => (long)i)), contextSize, bos);
    }

    /// <summary>Contexts cut from one token stream, each starting with <paramref name="bosTokenId"/> when it is given.</summary>
    public static IEnumerable<long[]> FromTokenStream(IEnumerable<long> tokens, int contextSize, int? bosTokenId = null) =>
        Pack([tokens], contextSize, bosTokenId);

    /// <summary>
    /// Contexts from a token file (<see cref="TokenFiles"/>): a 1-D file is a stream, cut as <see cref="FromTokenStream"/>;
    /// a 2-D file holds ready contexts, one per row, which must be <paramref name="contextSize"/> long and are used as they are.
    /// </summary>
    public static IEnumerable<long[]> FromTokenFile(string path, int contextSize, int? bosTokenId = null)
    {
        using var ids = TokenFiles.Load(path);
        if (ids.dim() == 1) return FromTokenStream(ids.data<long>().ToArray(), contextSize, bosTokenId);
        if (ids.shape[1] != contextSize)
            throw new DataSourceException(path, $"its rows are contexts of {ids.shape[1]} tokens but contextSize is {contextSize}; pass contextSize: {ids.shape[1]}.");
        long[] flat = ids.data<long>().ToArray();
        return [.. Enumerable.Range(0, (int)ids.shape[0]).Select(r => flat.AsSpan(r * contextSize, contextSize).ToArray())];
    }

    /// <summary>Token batches [batch, contextSize] int64; the last batch may be smaller.</summary>
    public static IEnumerable<Tensor> Batches(IEnumerable<long[]> contexts, int batchSize)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "A batch holds at least one context.");
        foreach (var chunk in contexts.Chunk(batchSize))
        {
            int length = chunk[0].Length;
            var flat = new long[chunk.Length * length];
            for (int i = 0; i < chunk.Length; i++) chunk[i].CopyTo(flat, i * length);
            yield return torch.tensor(flat, [chunk.Length, length]); // [batch, pos]
        }
    }

    static IEnumerable<long[]> Pack(IEnumerable<IEnumerable<long>> documents, int contextSize, int? bos)
    {
        int body = contextSize - (bos is null ? 0 : 1);
        if (body < 1) throw new ArgumentOutOfRangeException(nameof(contextSize), contextSize, "contextSize must leave room for at least one token after BOS.");
        var pending = new List<long>(contextSize);
        bool first = true;
        foreach (var document in documents)
        {
            // The separator marks where one document ends and the next begins, as SAELens's sequence_separator_token.
            IEnumerable<long> tokens = !first && bos is int separator ? document.Prepend(separator) : document;
            first = false;
            foreach (long token in tokens)
            {
                pending.Add(token);
                if (pending.Count < body) continue;
                yield return bos is int b ? [b, .. pending] : [.. pending];
                pending.Clear();
            }
        }
    }
}
