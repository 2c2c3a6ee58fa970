using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace SharpLens.Loading;

/// <summary>
/// Reads a manifest resource embedded in a .NET assembly file without loading the assembly: the PE file's CLI header
/// points at the resources blob, and each resource there is a 4-byte little-endian length followed by its bytes.
/// Nothing in the file is executed, and it works where loading assemblies from paths is not allowed (native AOT).
/// </summary>
public static class ManagedResources
{
    /// <summary>The resource's bytes as a stream, or null when the assembly has no embedded resource of that name.</summary>
    /// <exception cref="InvalidDataException">The file is not a .NET assembly, or the resource runs past its end.</exception>
    public static Stream? Open(string assemblyPath, string resourceName)
    {
        using var file = File.OpenRead(assemblyPath);
        using var pe = new PEReader(file, PEStreamOptions.LeaveOpen);
        if (!pe.HasMetadata || pe.PEHeaders.CorHeader is not { } cor)
            throw new InvalidDataException($"'{assemblyPath}' is not a .NET assembly (no CLI header), so it holds no manifest resources.");
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!resource.Implementation.IsNil || metadata.GetString(resource.Name) != resourceName) continue;
            if (!pe.PEHeaders.TryGetDirectoryOffset(cor.ResourcesDirectory, out int blob))
                throw new InvalidDataException($"'{assemblyPath}': the resources directory lies outside every section.");
            long start = blob + resource.Offset;
            if (start + 4 > file.Length) throw new InvalidDataException($"'{assemblyPath}': resource '{resourceName}' starts past the end of the file.");
            file.Position = start;
            Span<byte> header = stackalloc byte[4];
            file.ReadExactly(header);
            long length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (start + 4 + length > file.Length || length > Array.MaxLength)
                throw new InvalidDataException($"'{assemblyPath}': resource '{resourceName}' claims {length} bytes, more than the file holds.");
            var bytes = new byte[length];
            file.ReadExactly(bytes);
            return new MemoryStream(bytes, writable: false);
        }
        return null;
    }
}
