// An activation cache on disk, written once by running the model and read back by later training runs:
//
//   <folder>/activations.json        manifest, written last: {"format": "sharplens-activations", "version": 1,
//                                      "d_in": 64, "d_out": null, "rows": 12345, "chunks": 40,
//                                      "shards": ["shard-00000.safetensors", ...], "metadata": {...}}
//   <folder>/shard-NNNNN.safetensors  consecutive chunks, each one model call's kept positions, in order:
//                                      "chunk.00000.input" [n, d_in] and, for transcoders, "chunk.00000.output" [n, d_out]
//
// Chunks keep their boundaries, so an ActivationStore fed from the shards fills its buffer exactly as it did from the
// model and gives the same batches for the same seed. The whole folder is built under a temporary name and renamed.

using System.Text.Json;
using System.Text.Json.Nodes;
using SharpLens.Loading;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Saes.Data;

/// <summary>Writes activation chunks to safetensors shards and streams them back (format at the top of this file).</summary>
public static class ActivationShards
{
    const string ManifestName = "activations.json";

    /// <summary>
    /// Writes every chunk (consuming and disposing each) into shards of <paramref name="chunksPerShard"/> chunks; at most
    /// one shard's chunks are in memory at a time. Returns the number of rows written.
    /// </summary>
    public static long Write(string folder, IEnumerable<ActivationChunk> chunks, int chunksPerShard = 16,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (chunksPerShard < 1) throw new ArgumentOutOfRangeException(nameof(chunksPerShard), chunksPerShard, "A shard holds at least one chunk.");
        folder = Path.GetFullPath(folder);
        string temporary = $"{folder}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(temporary);
        try
        {
            var shards = new List<string>();
            long rows = 0;
            int chunkIndex = 0;
            long? dIn = null, dOut = null;
            bool? paired = null;
            foreach (var group in chunks.Chunk(chunksPerShard))
            {
                var named = new List<KeyValuePair<string, Tensor>>();
                try
                {
                    foreach (var chunk in group)
                    {
                        paired ??= chunk.Output is not null;
                        if (paired != (chunk.Output is not null))
                            throw new ArgumentException($"Chunk {chunkIndex} {(chunk.Output is null ? "lacks" : "has")} output activations unlike the chunks before it.", nameof(chunks));
                        dIn ??= chunk.Input.shape[1];
                        dOut ??= chunk.Output?.shape[1];
                        named.Add(new($"chunk.{chunkIndex:D5}.input", chunk.Input));
                        if (chunk.Output is not null) named.Add(new($"chunk.{chunkIndex:D5}.output", chunk.Output));
                        rows += chunk.Rows;
                        chunkIndex++;
                    }
                    string name = $"shard-{shards.Count:D5}.safetensors";
                    SafeTensorsWriter.Write(Path.Combine(temporary, name), named);
                    shards.Add(name);
                }
                finally
                {
                    foreach (var chunk in group) chunk.Dispose();
                }
            }
            var manifest = new JsonObject
            {
                ["format"] = "sharplens-activations", ["version"] = 1, ["d_in"] = dIn, ["d_out"] = dOut,
                ["rows"] = rows, ["chunks"] = chunkIndex, ["shards"] = new JsonArray([.. shards.Select(s => (JsonNode)s)]),
                ["metadata"] = new JsonObject([.. (metadata ?? new Dictionary<string, string>()).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))]),
            };
            File.WriteAllText(Path.Combine(temporary, ManifestName), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            IO.AtomicFile.ReplaceFolder(temporary, folder);
            return rows;
        }
        finally
        {
            if (Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
        }
    }

    /// <summary>The chunks of a folder written by <see cref="Write"/>, in the order they were written; each is the caller's to dispose.</summary>
    public static IEnumerable<ActivationChunk> Read(string folder)
    {
        string manifestPath = Path.Combine(folder, ManifestName);
        if (!File.Exists(manifestPath))
            throw new DataSourceException(folder, $"no {ManifestName}: this is not an activation cache, or writing it did not finish. Write it again with ActivationShards.Write.");
        JsonNode? manifest;
        try { manifest = JsonNode.Parse(File.ReadAllText(manifestPath)); }
        catch (JsonException e) { throw new DataSourceException(manifestPath, $"not valid JSON: {e.Message}"); }
        if (manifest?["format"]?.GetValue<string>() != "sharplens-activations" || manifest["shards"] is not JsonArray shards)
            throw new DataSourceException(manifestPath, "not a SharpLens activation manifest (format 'sharplens-activations' with a shard list).");
        return ReadShards(folder, [.. shards.Select(s => s!.GetValue<string>())]);
    }

    static IEnumerable<ActivationChunk> ReadShards(string folder, List<string> shards)
    {
        foreach (string shard in shards)
        {
            string path = Path.Combine(folder, shard);
            if (!File.Exists(path)) throw new DataSourceException(path, "a shard named in the manifest is missing.");
            using var file = SafeTensorsFile.Open(path);
            foreach (string name in file.Names.Where(n => n.EndsWith(".input", StringComparison.Ordinal)))
            {
                string output = name[..^".input".Length] + ".output";
                yield return new ActivationChunk(file.Read(name), file.Contains(output) ? file.Read(output) : null);
            }
        }
    }
}
