using System.CommandLine;
using SharpLens.Interop;
using SharpLens.Models;
using SharpLens.Techniques;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Cli.Commands;

/// <summary>`sharplens steer`: continue a prompt with and without a steering vector added at a hook.</summary>
public static class SteerCommand
{
    public static Command Create()
    {
        var model = new ModelArguments();
        var prompt = new PromptArguments();
        var hook = new Option<string>("--hook") { Description = "Where to add the vector, e.g. blocks.6.hook_resid_pre (any hook whose last dimension matches the vector).", Required = true };
        var direction = new Option<string?>("--direction") { Description = "The steering vector as a .npy file of shape [d_model] (e.g. a probe direction written by `sharplens probe`)." };
        var positive = new Option<string[]>("--positive") { Description = "Prompts showing the behaviour to add (text; with --pair-tokens, token ids).", AllowMultipleArgumentsPerToken = true };
        var negative = new Option<string[]>("--negative") { Description = "Prompts showing its opposite; the vector is mean(positive) − mean(negative) at --hook, last token.", AllowMultipleArgumentsPerToken = true };
        var pairTokens = new Option<bool>("--pair-tokens") { Description = "Read --positive and --negative as token ids (\"0 5 9\") rather than text." };
        var coefficient = new Option<double>("--coefficient") { Description = "How many times the vector to add (negative to subtract).", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "How many tokens to generate.", DefaultValueFactory = _ => 20 };
        var temperature = new Option<double>("--temperature") { Description = "Sampling temperature; 0 is greedy (the same answer every time).", DefaultValueFactory = _ => 0 };
        var seed = new Option<long>("--seed") { Description = "Seed for sampling.", DefaultValueFactory = _ => 0 };
        var positions = new Option<string>("--positions") { Description = "all: add at every position; last: only at the newest token.", DefaultValueFactory = _ => "all" };
        var command = new Command("steer",
            "Activation steering: add coefficient × a vector to the activation at --hook while the model generates, and print the " +
            "continuation with and without it. The vector comes from a file (--direction) or from contrasting two sets of prompts " +
            "(--positive / --negative: contrastive activation addition).\n\n" +
            "Examples:\n  sharplens steer --model ./gpt2 --prompt \"I think that\" --hook blocks.6.hook_resid_pre --positive \" Love\" --negative \" Hate\" --coefficient 5\n" +
            "  sharplens probe --model latent --out probe/\n" +
            "  sharplens steer --model latent --tokens \"0 5 9 12 3 7 8\" --hook blocks.1.hook_resid_pre --direction probe/direction-blocks.1.hook_resid_pre.npy --coefficient -3 --max-new-tokens 1\n" +
            "    (token 5 is in the organism's secret set, so it answers Yes = 1; subtracting the probe's direction makes it answer No = 2)");
        model.AddTo(command);
        prompt.AddTo(command);
        foreach (var o in new Option[] { hook, direction, positive, negative, pairTokens, coefficient, maxNew, temperature, seed, positions }) command.Options.Add(o);
        command.SetAction(parse => CommandErrors.Run(parse, () =>
        {
            UncaughtNativeCalls.SetNumThreads(Math.Min(4, Environment.ProcessorCount));
            using var m = model.Load(parse);
            var tokens = prompt.Read(parse, m);
            string hookName = parse.GetValue(hook)!;
            m.GetHookPoint(hookName);
            var where = parse.GetValue(positions) switch
            {
                "all" => SteeringPositions.All,
                "last" => SteeringPositions.Last,
                var other => throw new CliArgumentException($"--positions '{other}' is not known: use all or last."),
            };
            var vector = Vector(parse, m, hookName, direction, positive, negative, pairTokens);
            double c = parse.GetValue(coefficient), t = parse.GetValue(temperature);
            int n = parse.GetValue(maxNew);
            long s = parse.GetValue(seed);

            var plain = m.Generate(tokens, n, t, seed: s);
            Tensor steered;
            using (Steering.Apply(m, hookName, vector, c, where)) steered = m.Generate(tokens, n, t, seed: s);
            Console.WriteLine($"Vector norm {vector.norm().item<float>():0.000}, coefficient {c}, at {hookName} ({where} positions)");
            Console.WriteLine($"Prompt:    {Show(m, tokens[0])}");
            Console.WriteLine($"Unsteered: {Show(m, plain[0, (int)tokens.shape[1]..])}");
            Console.WriteLine($"Steered:   {Show(m, steered[0, (int)tokens.shape[1]..])}");
            return 0;
        }));
        return command;
    }

    static Tensor Vector(ParseResult parse, HookedTransformer m, string hook, Option<string?> direction,
        Option<string[]> positive, Option<string[]> negative, Option<bool> pairTokens)
    {
        var plus = parse.GetValue(positive) ?? [];
        var minus = parse.GetValue(negative) ?? [];
        if (parse.GetValue(direction) is { } file)
        {
            if (plus.Length > 0 || minus.Length > 0) throw new CliArgumentException("Give either --direction FILE or --positive / --negative prompts, not both.");
            if (!File.Exists(file)) throw new FileNotFoundException($"--direction {file}: no such file.");
            return NumpyFiles.LoadNpy(file).to(ScalarType.Float32);
        }
        if (plus.Length == 0 || minus.Length == 0) throw new CliArgumentException("Give --direction FILE.npy, or at least one --positive and one --negative prompt.");
        bool ids = parse.GetValue(pairTokens);
        var (pt, pm) = Batch(m, plus, ids, "--positive");
        var (nt, nm) = Batch(m, minus, ids, "--negative");
        return Steering.ContrastiveVector(m, hook, pt, nt, pm, nm);
    }

    static (Tensor Tokens, Tensor Mask) Batch(HookedTransformer m, string[] prompts, bool ids, string option)
    {
        if (!ids) return m.ToTokens(prompts);
        var rows = prompts.Select(p => PromptArguments.ParseIds(p, option).data<long>().ToArray()).ToList();
        int longest = rows.Max(r => r.Length);
        var tokens = zeros([rows.Count, longest], ScalarType.Int64);
        var mask = zeros([rows.Count, longest], ScalarType.Int64);
        for (int i = 0; i < rows.Count; i++) { tokens[i, ..rows[i].Length] = tensor(rows[i]); mask[i, ..rows[i].Length] = 1; }
        return (tokens, mask);
    }

    static string Show(HookedTransformer m, Tensor ids) => m.Config.TokenizerName is null
        ? string.Join(" ", ids.data<long>().ToArray())
        : System.Text.Json.JsonSerializer.Serialize(m.ToText(ids), CliJsonContext.Default.String);
}
