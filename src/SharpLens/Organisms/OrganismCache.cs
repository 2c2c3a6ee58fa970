using System.Text.Json;
using SharpLens.Models;
using SharpLens.Training;

namespace SharpLens.Organisms;

/// <summary>
/// Where trained organisms are kept so a second run reuses them: <c>~/.cache/sharplens/organisms/NAME/</c>, with the
/// root overridable by the <c>SHARPLENS_CACHE</c> environment variable or an explicit folder.
/// </summary>
public static class OrganismCache
{
    public const string EnvironmentVariable = "SHARPLENS_CACHE";

    /// <summary>The cache root: <paramref name="overrideRoot"/>, else $SHARPLENS_CACHE, else ~/.cache/sharplens.</summary>
    public static string Root(string? overrideRoot = null)
    {
        if (!string.IsNullOrWhiteSpace(overrideRoot)) return Path.GetFullPath(overrideRoot);
        var fromEnvironment = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return Path.GetFullPath(fromEnvironment);
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "sharplens");
    }

    /// <summary>
    /// The cache name for an organism's settings: <paramref name="kind"/> and a short hash of the recipe version and
    /// every setting, so changed settings (or a changed recipe) never reuse old weights.
    /// </summary>
    public static string NameFor(string kind, string recipeVersion, string settingsJson) =>
        $"{kind}-{Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(recipeVersion + "\n" + settingsJson)))[..12]}";

    public static string FolderFor(string name, string? overrideRoot = null) => Path.Combine(Root(overrideRoot), "organisms", name);

    /// <summary>
    /// Fills a fresh temporary folder with <paramref name="write"/>, then renames it to <paramref name="folder"/>, so a
    /// run killed halfway leaves no half-written organism where a later run would look for one.
    /// </summary>
    public static void WriteAtomically(string folder, Action<string> write) => IO.AtomicFile.WriteFolder(folder, write);

    const string SettingsFile = "settings.json", TrainingFile = "training.json";

    /// <summary>
    /// Saves a trained organism to <paramref name="folder"/>, atomically: the model in SharpLens's format
    /// (config.json + model.safetensors), the settings it was trained with, and its training curve.
    /// </summary>
    public static void Save(string folder, HookedTransformer model, string settingsJson, TrainingRecord training) =>
        WriteAtomically(folder, temporary =>
        {
            model.WriteTo(temporary);
            File.WriteAllText(Path.Combine(temporary, SettingsFile), settingsJson);
            var saved = new SavedTraining([.. training.Losses], training.Elapsed.TotalSeconds);
            File.WriteAllText(Path.Combine(temporary, TrainingFile), IO.SharpLensJson.Serialize(saved));
        });

    /// <summary>
    /// The organism saved in <paramref name="folder"/> with exactly these settings, or null when it is absent, was
    /// trained with other settings, or is damaged (a damaged entry is a cache miss: the caller retrains and replaces it).
    /// </summary>
    public static (HookedTransformer Model, TrainingRecord Training)? TryLoad(string folder, string settingsJson)
    {
        string settingsPath = Path.Combine(folder, SettingsFile), trainingPath = Path.Combine(folder, TrainingFile);
        if (!File.Exists(settingsPath) || !File.Exists(trainingPath)) return null;
        try
        {
            if (File.ReadAllText(settingsPath) != settingsJson) return null;
            var training = IO.SharpLensJson.Deserialize<SavedTraining>(File.ReadAllText(trainingPath))
                ?? throw new JsonException($"{trainingPath} is empty");
            var model = HookedTransformer.Load(folder);
            model.eval();
            return (model, new TrainingRecord(training.Losses, TimeSpan.FromSeconds(training.ElapsedSeconds)));
        }
        catch (Exception e) when (e is SharpLensException or IOException or JsonException or ArgumentException or InvalidOperationException or
                                      UnauthorizedAccessException or InvalidDataException)
        {
            return null;
        }
    }

    internal sealed record SavedTraining(double[] Losses, double ElapsedSeconds);
}
