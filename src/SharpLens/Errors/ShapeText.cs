namespace SharpLens;

/// <summary>
/// How a shape reads in every message and listing: <c>[2, 16, 768]</c>, the sizes in brackets as TransformerLens's
/// shape comments write them. One place, so that an error from a loader and one from a technique spell it alike.
/// </summary>
public static class ShapeText
{
    /// <summary>The sizes in brackets: <c>ShapeText.Of(x.shape)</c> → <c>[2, 16, 768]</c>.</summary>
    public static string Of(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";

    /// <summary>The same for sizes held as <c>int</c>s.</summary>
    public static string Of(IEnumerable<int> shape) => $"[{string.Join(", ", shape)}]";
}
