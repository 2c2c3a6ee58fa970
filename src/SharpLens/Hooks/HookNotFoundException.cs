namespace SharpLens.Hooks;

/// <summary>A hook name that the model does not have; the message lists the closest names it does have.</summary>
public sealed class HookNotFoundException(string name, IEnumerable<string> known) : SharpLensArgumentException("hook", Describe(name, known))
{
    public string HookName { get; } = name;

    static string Describe(string name, IEnumerable<string> known)
    {
        var closest = known.OrderBy(k => EditDistance(name, k)).ThenBy(k => k, StringComparer.Ordinal).Take(3).ToList();
        return $"No hook point named '{name}'. Closest valid names: {string.Join(", ", closest.Select(c => $"'{c}'"))}. " +
               "Hook names follow TransformerLens, e.g. 'blocks.0.hook_resid_pre' or 'blocks.0.attn.hook_pattern'.";
    }

    internal static int EditDistance(string a, string b)
    {
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) row[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
