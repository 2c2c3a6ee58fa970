using System.Text.Json.Nodes;
using SharpLens.Models.Encoder;
using SharpLens.Tests.Loading;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpLens.Tests.Encoder;

/// <summary>
/// A tiny BertForMaskedLM (Fixtures/zoo/bert-tiny-f32, safetensors with <c>bert.</c> names) against the independent
/// float64 PyTorch forward in scripts/golden/make_zoo_golden.py: last hidden states and MLM logits at every position.
/// </summary>
public sealed class BertGoldenTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;
    static readonly string Folder = LoadingTestKit.Fixture(Path.Combine("zoo", "bert-tiny-f32"));
    static readonly JsonObject Golden = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "golden.json")))!.AsObject();

    [Theory]
    [InlineData("single")]
    [InlineData("batch")]
    public void Hidden_states_and_mlm_logits_match_the_pytorch_reference(string input)
    {
        using var model = HookedEncoder.FromPretrained(Folder);
        Assert.True(model.HasMlmHead);
        using var scope = torch.NewDisposeScope();
        var g = Golden[input]!.AsObject();
        var tokens = Ids(g["tokens"]!);
        var mask = Ids(g["attention_mask"]!);

        var (logits, cache) = model.RunWithCache(tokens, attentionMask: mask);
        using (cache)
        {
            var hidden = cache["blocks.1.hook_normalized_resid_post"]; // the last block's output is the last hidden state
            double hiddenDiff = (hidden - Floats(g["hidden"]!, g["hidden_shape"]!)).abs().max().item<float>();
            double logitDiff = (logits - Floats(g["mlm_logits"]!, g["shape"]!)).abs().max().item<float>();
            Assert.True(hiddenDiff < Tolerance, $"{input}: max |hidden − reference| = {hiddenDiff:E3}");
            Assert.True(logitDiff < Tolerance, $"{input}: max |mlm logits − reference| = {logitDiff:E3}");
            output.WriteLine($"{input}: max |hidden − reference| = {hiddenDiff:E2}, max |mlm logits − reference| = {logitDiff:E2}");
            // Without hooks the forward takes the fused attention and LayerNorm kernels: same maths, float32 rounding.
            Assert.True((model.Encode(tokens, mask) - hidden).abs().max().item<float>() < 1e-5);
        }
    }

    [Fact]
    public void The_padded_row_equals_its_sequence_run_alone()
    {
        using var model = HookedEncoder.FromPretrained(Folder);
        using var scope = torch.NewDisposeScope();
        var g = Golden["batch"]!.AsObject();
        var tokens = Ids(g["tokens"]!);
        var mask = Ids(g["attention_mask"]!);
        var batched = model.Encode(tokens, mask);
        var alone = model.Encode(tokens[1, ..5].unsqueeze(0));
        Assert.True((batched[1, ..5] - alone[0]).abs().max().item<float>() < 1e-5);
    }

    static Tensor Ids(JsonNode rows) =>
        torch.tensor(rows.AsArray().SelectMany(r => r!.AsArray().Select(x => (long)x!)).ToArray(), [rows.AsArray().Count, rows[0]!.AsArray().Count]);

    static Tensor Floats(JsonNode values, JsonNode shape) =>
        torch.tensor(values.AsArray().Select(x => (float)(double)x!).ToArray(), shape.AsArray().Select(x => (long)x!).ToArray());
}
