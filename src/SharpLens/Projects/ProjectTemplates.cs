namespace SharpLens.Projects;

/// <summary>A worked mini-project: the question, the hypothesis, the commands that answer it, and an app to extend.</summary>
public sealed record ProjectTemplate(string Name, string Summary, string Question, string Hypothesis, IReadOnlyList<string> Commands, string? App = null);

/// <summary>The templates of <c>sharplens project new --template</c>.</summary>
public static class ProjectTemplates
{
    public static IReadOnlyList<ProjectTemplate> All { get; } =
    [
        new("induction",
            "Find the induction circuit in the tour organism (after Olsson et al. 2022, \"In-context learning and induction heads\").",
            "Which heads of the induction organism implement induction, and which earlier head do they rely on?",
            "A previous-token head in layer 0 and one or more induction heads in layer 1, and a loss on the repeated half of a sequence far below the loss on its random half.",
            ["sharplens tour --retrain --out tour", "sharplens heads --model induction --seed {seed} --out heads.npy"]),
        new("grokking",
            "Replicate grokking's progress measures (Nanda et al. 2023) on the fast modular-addition variant.",
            "When the model generalises long after it memorised, what changes inside it: do restricted and excluded loss move before the test loss falls?",
            "The restricted loss falls and the excluded loss rises during the circuit-formation phase, before the test loss drops; a few key frequencies carry the algorithm.",
            ["sharplens grokking --fast --seed {seed} --out grokking"]),
        new("pos-probing",
            "Replicate part-of-speech probing across all-MiniLM-L6-v2's layers on the Brown Corpus's tags (the Tenney et al. 2019 pattern), " +
            "with Hewitt & Liang's (2019) control task and selectivity.",
            "At which depth of all-MiniLM-L6-v2 is part of speech most linearly readable, and is that the representation or the probe memorising words?",
            "Real-tag accuracy rises above the majority baseline already at the embeddings (a word's identity predicts most of its tag) and peaks in the lower-middle " +
            "layers; the control task (one random tag per word type) stays well below it, so selectivity is positive, largest where the representation has moved away from word identity.",
            ["sharplens pos-probe --sentences 800 --seed {seed} --out pos"]),
    ];

    /// <summary>A template's commands with the project's seed in place of {seed}.</summary>
    public static IEnumerable<string> CommandsFor(ProjectTemplate template, long seed) =>
        template.Commands.Select(c => c.Replace("{seed}", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));

    public static ProjectTemplate Get(string name) => All.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new SharpLensArgumentException("--template", $"There is no template '{name}'; the templates are {string.Join(", ", All.Select(t => t.Name))}.");

    /// <summary>The app a project starts from: the induction organism, a cache, one number.</summary>
    public const string DefaultApp = """
        using SharpLens.Organisms;
        using TorchSharp;

        // A starting point: load the induction organism, run it with a cache, print one attention weight.
        using var induction = Organism.Induction();
        var tokens = torch.tensor(new long[] { 0, 7, 12, 30, 55, 7, 12, 30 }).unsqueeze(0); // [batch 1, pos 8]
        var (logits, cache) = induction.Model.RunWithCache(tokens);
        Console.WriteLine($"head 1.2 at the last position attends to position {cache["pattern", 1][0, 2, -1].argmax().item<long>()}");

        """;
}
