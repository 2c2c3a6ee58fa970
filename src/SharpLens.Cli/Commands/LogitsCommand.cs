using System.CommandLine;
using SharpLens.Interop;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens logits`: one forward pass, written as a float32 .npy array other tools can check against.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var outOption = new Option<string>("--out") { Description = "Where to write the logits: .npy, float32, [positions, d_vocab].", Required = true };
        var command = new Command("logits",
            "Run the model on one prompt and write its logits as a NumPy array [positions, d_vocab] (float32).\n\n" +
            "Example: sharplens logits --model ./gpt2 --prompt \"The Eiffel Tower is in\" --out logits.npy");
        model.AddTo(command);
        prompt.AddTo(command);
        command.Options.Add(outOption);
        command.SetAction(parse => CommandErrors.Run(() =>
        {
            using var m = model.Load(parse);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var tokens = prompt.Read(parse, m);                      // [1, pos]
            var logits = m.Run(tokens)[0].to(ScalarType.Float32);    // [pos, d_vocab]
            string path = parse.GetValue(outOption)!;
            NumpyFiles.SaveNpy(path, logits);
            var last = logits[-1];
            long top = last.argmax().item<long>();
            Console.WriteLine($"{tokens.shape[1]} positions × {logits.shape[1]} logits → {Path.GetFullPath(path)}");
            Console.WriteLine($"Most likely next token: {PromptArguments.Describe(m, top)} (logit {last[top].item<float>():0.000})");
            return 0;
        }));
        return command;
    }
}
