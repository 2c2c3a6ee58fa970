using System.CommandLine;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens generate`: continue a prompt, greedily or by seeded sampling, and print the continuation.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var maxNew = new Option<int>("--max-new-tokens") { Description = "How many tokens to add (default 20).", DefaultValueFactory = _ => 20 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 is greedy (default 1).", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int?>("--top-k") { Description = "Sample only among the k most likely tokens." };
        var topP = new Option<double?>("--top-p") { Description = "Sample only among the most likely tokens whose probabilities add up to p (nucleus sampling)." };
        var seed = new Option<long>("--seed") { Description = "Seed for sampling, so a run can be repeated (default 0).", DefaultValueFactory = _ => 0 };
        var command = new Command("generate",
            "Continue a prompt and print the continuation (the prompt is not repeated).\n\n" +
            "Example: sharplens generate --model ./gpt2 --prompt \"Once upon a time\" --max-new-tokens 30 --temperature 0.8 --top-p 0.95 --seed 1");
        model.AddTo(command);
        prompt.AddTo(command);
        foreach (var o in new Option[] { maxNew, temperature, topK, topP, seed }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var m = model.Load(parse);
            using var scope = NewDisposeScope();
            var tokens = prompt.Read(parse, m); // [1, pos]
            var sequence = m.Generate(tokens, parse.GetValue(maxNew), parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP), parse.GetValue(seed)); // [1, pos + new]
            var added = sequence[0, (int)tokens.shape[1]..];
            Console.WriteLine(m.Config.TokenizerName is null
                ? string.Join(" ", added.data<long>().ToArray())
                : m.ToText(added.unsqueeze(0)));
            return 0;
        }));
        return command;
    }
}
