using System.CommandLine;
using System.Text.Json;
using SharpLens.Interop;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens dla`: direct logit attribution of answer − wrong at the last position, per component.</summary>
public static class DlaCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var answer = new Option<string?>("--answer") { Description = "The right next token, as text (exactly one token; GPT-2 words usually start with a space: \" Paris\")." };
        var wrong = new Option<string?>("--wrong") { Description = "The wrong next token to compare against, as text (one token)." };
        var answerToken = new Option<long?>("--answer-token") { Description = "The right next token as an id (instead of --answer)." };
        var wrongToken = new Option<long?>("--wrong-token") { Description = "The wrong next token as an id (instead of --wrong)." };
        var perHead = new Option<bool>("--per-head") { Description = "Split each attention layer into its heads (LlHh) and its output bias (l_b_O)." };
        var outOption = new Option<string>("--out") { Description = "Where to write the contributions (.npy, float32, [components]); the names go to a .json beside it.", Required = true };
        var command = new Command("dla",
            "Direct logit attribution: how much each part of the model (embeddings, each attention layer or head, each MLP) " +
            "pushes the logit of --answer above that of --wrong at the last position, through the final norm (its scale taken " +
            "from the run) and the unembedding. The contributions, with the constant bias terms, add up to the logit difference.\n\n" +
            "Example: sharplens dla --model ./gpt2 --prompt \"The Eiffel Tower is in\" --answer \" Paris\" --wrong \" Rome\" --out dla.npy");
        model.AddTo(command);
        prompt.AddTo(command);
        foreach (var o in new Option[] { answer, wrong, answerToken, wrongToken, perHead, outOption }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            UncaughtNativeCalls.SetNumThreads(Math.Min(4, Environment.ProcessorCount));
            using var m = model.Load(parse);
            var tokens = prompt.Read(parse, m);
            long a = PromptArguments.SingleToken(m, parse.GetValue(answer), parse.GetValue(answerToken), "answer");
            long w = PromptArguments.SingleToken(m, parse.GetValue(wrong), parse.GetValue(wrongToken), "wrong");
            var answers = tensor(new[] { a });
            var wrongs = tensor(new[] { w });

            var (logits, cache) = DirectLogitAttribution.RunWithCache(m, tokens);
            using (cache)
            using (var stack = parse.GetValue(perHead) ? DirectLogitAttribution.PerHeadResidual(m, cache) : DirectLogitAttribution.DecomposedResidual(m, cache))
            {
                var attribution = DirectLogitAttribution.Project(m, stack, cache, answers, wrongs);
                double logitDiff = DirectLogitAttribution.LogitDifference(logits, answers, wrongs)[0];
                var values = attribution.For(0);

                string path = parse.GetValue(outOption)!;
                NumpyFiles.SaveNpy(path, tensor(values.Select(v => (float)v).ToArray())); // [components]
                string sidecar = Path.ChangeExtension(path, ".json");
                var summary = new System.Text.Json.Nodes.JsonObject
                {
                    ["components"] = new System.Text.Json.Nodes.JsonArray([.. attribution.Names.Select(n => (System.Text.Json.Nodes.JsonNode?)n)]),
                    ["values"] = new System.Text.Json.Nodes.JsonArray([.. values.Select(v => (System.Text.Json.Nodes.JsonNode?)v)]),
                    ["logit_difference"] = logitDiff, ["answer_token"] = a, ["wrong_token"] = w, ["position"] = tokens.shape[1] - 1,
                };
                File.WriteAllText(sidecar, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

                Console.WriteLine($"Logit difference {PromptArguments.Describe(m, a)} − {PromptArguments.Describe(m, w)} at the last position: {logitDiff:0.0000}");
                Console.WriteLine($"  {"component",-14} {"contribution",12}");
                for (int c = 0; c < values.Length; c++) Console.WriteLine($"  {attribution.Names[c],-14} {values[c],12:0.0000}");
                Console.WriteLine($"  {"sum",-14} {values.Sum(),12:0.0000}");
                Console.WriteLine($"Wrote {Path.GetFullPath(path)} and {Path.GetFullPath(sidecar)}");
            }
            logits.Dispose();
            return 0;
        }));
        return command;
    }
}
