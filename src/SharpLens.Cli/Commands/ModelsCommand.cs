using System.CommandLine;
using SharpLens.Loading.Hub;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens models`: the registry of named checkpoints.</summary>
public static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models",
            "List the checkpoints SharpLens knows by name: name, family (model_type), parameters and Hugging Face hub id. Any of the names " +
            "(or the hub id) can be given as --model; it is found in, or downloaded into, the Hugging Face cache.");
        command.SetAction(_ => CommandErrors.Run(() =>
        {
            var rows = ModelCatalog.Entries;
            int name = Math.Max(4, rows.Max(r => r.Name.Length)), family = Math.Max(6, rows.Max(r => r.Family.Length)), size = Math.Max(10, rows.Max(r => r.Parameters.Length));
            Console.WriteLine($"{"name".PadRight(name)}  {"family".PadRight(family)}  {"parameters".PadRight(size)}  hub id");
            foreach (var r in rows)
                Console.WriteLine($"{r.Name.PadRight(name)}  {r.Family.PadRight(family)}  {r.Parameters.PadRight(size)}  {r.HubId}");
            Console.WriteLine($"\n{rows.Count} models. Families SharpLens loads: {string.Join(", ", Loading.HuggingFaceModels.SupportedModelTypes)}, {string.Join(", ", Loading.HuggingFaceModels.EncoderModelTypes)} (encoders).");
            return 0;
        }));
        return command;
    }
}
