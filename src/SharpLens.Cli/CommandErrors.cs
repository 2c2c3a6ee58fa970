using SharpLens.Hooks;

namespace SharpLens.Cli;

/// <summary>Runs a command's body and turns a usage mistake into one readable line and exit code 2, not a stack trace.</summary>
static class CommandErrors
{
    public static int Run(Func<int> body)
    {
        try { return body(); }
        catch (Exception e) when (e is SharpLensException or ArgumentException or HookNotFoundException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or InvalidOperationException or IOException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }
}
