using SharpLens.Models;
using SharpLens.Organisms;

namespace SharpLens.Cli;

/// <summary>
/// Loads a built-in organism for a command. A cached one loads silently; one that must be trained first says so, with
/// a progress bar and the time left (or a plain line every 5% of the steps when the output is not a terminal).
/// </summary>
static class OrganismDisplay
{
    public static HookedTransformer Load(string name, string? cacheRoot)
    {
        if (Organism.IsCached(name, cacheRoot)) return Organism.Load(name, cacheRoot: cacheRoot);
        int steps = Organism.TrainingSteps(name);
        Console.WriteLine($"The {name} organism is not cached yet: training it now ({steps} steps; cached in {OrganismCache.Root(cacheRoot)}/organisms/ for later runs).");
        return TrainingDisplay.Run($"Training the {name} organism", steps,
            progress => Organism.Load(name, progress, cacheRoot),
            p => $"step {p.Step,5}/{p.TotalSteps}  loss {p.Loss:0.000}");
    }
}
