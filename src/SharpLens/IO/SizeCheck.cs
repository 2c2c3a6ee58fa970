namespace SharpLens.IO;

/// <summary>
/// The checks every reader makes on a size that comes from a file, before any memory is reserved for it: the
/// numbers are non-negative, their product does not overflow, what they describe fits in the bytes the file really
/// has, and in the memory this machine has. Each failure is a <see cref="SharpLensFileException"/> naming the file
/// and the field.
/// </summary>
public static class SizeCheck
{
    /// <summary>Environment variable that overrides <see cref="MemoryLimitBytes"/> (bytes, or a number with K/M/G/T).</summary>
    public const string MaxMemoryVariable = "SHARPLENS_MAX_MEMORY";

    /// <summary>Set by a front end's <c>--max-memory</c>; wins over <see cref="MaxMemoryVariable"/>.</summary>
    public static long? MaxMemoryOverride { get; set; }

    /// <summary>
    /// The most memory one model, tensor or buffer read from a file may claim: <c>--max-memory</c>, else
    /// <c>SHARPLENS_MAX_MEMORY</c>, else the memory this process may use (physical memory or its container's limit).
    /// </summary>
    public static long MemoryLimitBytes
    {
        get
        {
            if (MaxMemoryOverride is long set) return set;
            if (Environment.GetEnvironmentVariable(MaxMemoryVariable) is { Length: > 0 } text)
                return ParseBytes(text) ?? throw new SharpLensArgumentException(MaxMemoryVariable, $"{MaxMemoryVariable}='{text}' is not a size; give bytes or a number with K, M, G or T (e.g. 8G).");
            long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            return available > 0 ? available : long.MaxValue;
        }
    }

    /// <summary>"8G", "512M", "1.5T", "123456" → bytes; null when unreadable.</summary>
    public static long? ParseBytes(string text)
    {
        text = text.Trim().TrimEnd('B', 'b').TrimEnd('i');
        if (text.Length == 0) return null;
        double scale = char.ToUpperInvariant(text[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40, _ => 1 };
        if (scale != 1) text = text[..^1];
        if (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double value)
            || value < 0 || double.IsNaN(value) || value * scale > long.MaxValue) return null;
        return (long)(value * scale);
    }

    /// <summary>A dimension read from <paramref name="file"/>: at least <paramref name="minimum"/> and at most <paramref name="maximum"/>.</summary>
    public static long Dimension(long value, string file, string field, long minimum = 0, long maximum = int.MaxValue)
    {
        if (value < minimum || value > maximum)
            throw new SharpLensFileException(file, field, $"{file}: {field} is {value}; it must be between {minimum} and {maximum}. The file is corrupt or not what it claims to be.");
        return value;
    }

    /// <summary>The number of elements of <paramref name="shape"/>, refusing negative dimensions and a product that overflows.</summary>
    public static long Elements(IReadOnlyList<long> shape, string file, string field)
    {
        long count = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new SharpLensFileException(file, field, $"{file}: {field} has a negative dimension in {ShapeText.Of(shape)}.");
            if (d != 0 && count > long.MaxValue / d)
                throw new SharpLensFileException(file, field, $"{file}: {field} has shape {ShapeText.Of(shape)}, whose element count overflows 64 bits. The file is corrupt.");
            count *= d;
        }
        return count;
    }

    /// <summary><paramref name="elements"/> × <paramref name="elementSize"/> bytes, refusing overflow.</summary>
    public static long Bytes(long elements, long elementSize, string file, string field)
    {
        if (elements < 0 || elementSize < 0 || (elementSize != 0 && elements > long.MaxValue / elementSize))
            throw new SharpLensFileException(file, field, $"{file}: {field} would need {elements} × {elementSize} bytes, which overflows 64 bits. The file is corrupt.");
        return elements * elementSize;
    }

    /// <summary>Refuses <paramref name="needed"/> bytes that the <paramref name="available"/> bytes of the file cannot hold.</summary>
    public static void InFile(long needed, long available, string file, string field)
    {
        if (needed > available)
            throw new SharpLensFileException(file, field, $"{file}: {field} needs {needed:N0} bytes but only {Math.Max(0, available):N0} remain in the file; it is truncated or its header is wrong.");
    }

    /// <summary>Refuses to reserve <paramref name="bytes"/> for <paramref name="what"/> when that exceeds <see cref="MemoryLimitBytes"/>.</summary>
    public static void InMemory(long bytes, string file, string what)
    {
        long limit = MemoryLimitBytes;
        if (bytes > limit)
            throw new SharpLensFileException(file, what, $"{file}: {what} would need {Describe(bytes)} of memory, more than the {Describe(limit)} available. " +
                $"If the file is right and the machine can take it, raise the limit with --max-memory or {MaxMemoryVariable} (e.g. {MaxMemoryVariable}=64G).");
    }

    /// <summary>Bytes as a person reads them: 1.5 GiB, 12 MiB, 900 bytes.</summary>
    public static string Describe(long bytes) => bytes switch
    {
        >= 1L << 40 => $"{bytes / (double)(1L << 40):0.#} TiB",
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.#} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.#} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:0.#} KiB",
        _ => $"{bytes} bytes",
    };
}
