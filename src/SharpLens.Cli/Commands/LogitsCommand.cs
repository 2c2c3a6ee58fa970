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
        var outOption = new Option<string>("--out") { Description = "Where to write the logits: .npy, float32, [positions, d_vocab] (an encoder: its last hidden state, [positions, d_model]).", Required = true };
        var command = new Command("logits",
            "Run the model on one prompt and write its logits as a NumPy array [positions, d_vocab] (float32). For an encoder " +
            "(all-MiniLM-L6-v2, a BERT folder) the array is the final hidden state, [positions, d_model].\n\n" +
            "Example: sharplens logits --model ./gpt2 --prompt \"The Eiffel Tower is in\" --out logits.npy");
        model.AddTo(command);
        prompt.AddTo(command);
        command.Options.Add(outOption);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            using var loaded = model.LoadAny(parse);
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            string path = parse.GetValue(outOption)!;
            if (loaded.Encoder is { } encoder)
            {
                var ids = prompt.Read(parse, encoder);         // [1, pos]
                var hidden = encoder.Encode(ids)[0].to(ScalarType.Float32); // [pos, d_model]
                NumpyFiles.SaveNpy(path, hidden);
                Console.WriteLine($"{ids.shape[1]} positions × {hidden.shape[1]} hidden dimensions (encoder: last hidden state) → {Path.GetFullPath(path)}");
                return 0;
            }
            var m = loaded.Decoder!;
            var tokens = prompt.Read(parse, m);                      // [1, pos]
            var logits = m.Run(tokens)[0].to(ScalarType.Float32);    // [pos, d_vocab]
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
