using SharpLens.Models;
using SharpLens.Tracing;

namespace SharpLens.Tests.Tracing;

/// <summary>Malformed and hostile plans are refused before anything runs, with a message naming what and where.</summary>
public sealed class PlanValidationTests : IDisposable
{
    readonly HookedTransformer _model = TestModels.RandomModel();
    readonly TraceLayout _layout;

    public PlanValidationTests() => _layout = TraceTarget.Of(_model).Layout;

    public void Dispose() => _model.Dispose();

    static string Plan(string ops, string extra = "") =>
        $$"""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1, 2, 3, 4]] }], {{extra}} "ops": [ {{ops}} ] }""";

    PlanValidationException Refused(string json) =>
        Assert.ThrowsAny<PlanValidationException>(() => PlanValidator.Validate(TracePlanJson.Parse(json), _layout, PlanLimits.Server));

    [Fact]
    public void A_valid_plan_passes()
    {
        PlanValidator.Validate(TracePlanJson.Parse(Plan("""
            { "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "index": "[:, -1]" },
            { "op": "write", "hook": "blocks.1.hook_resid_post", "index": "[:, -1]", "value": { "op": "mul", "args": [{ "ref": "h" }, { "scalar": 2 }] } },
            { "op": "save", "name": "h", "value": { "ref": "h" } }
            """)), _layout);
    }

    [Fact]
    public void Unknown_plan_op_is_refused_naming_it_and_where()
    {
        var e = Refused(Plan("""{ "op": "exec", "hook": "blocks.0.hook_resid_post" }"""));
        Assert.Contains("ops[0].op", e.Message);
        Assert.Contains("'exec'", e.Message);
    }

    [Fact]
    public void Unknown_expression_op_is_refused_naming_the_path()
    {
        var e = Refused(Plan("""
            { "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post" },
            { "op": "save", "name": "x", "value": { "op": "add", "args": [{ "ref": "h" }, { "op": "system", "args": [{ "ref": "h" }] }] } }
            """));
        Assert.Contains("ops[1].value.args[1].op", e.Message);
        Assert.Contains("'system'", e.Message);
    }

    [Fact]
    public void Unknown_hook_is_refused_with_the_closest_names()
    {
        var e = Refused(Plan("""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_psot" }, { "op": "save", "name": "h", "value": { "ref": "h" } }"""));
        Assert.Contains("ops[0].hook", e.Message);
        Assert.Contains("'blocks.0.hook_resid_post'", e.Message);
    }

    [Fact]
    public void Deep_expressions_are_refused()
    {
        string expr = """{ "ref": "h" }""";
        for (int i = 0; i < 40; i++) expr = $$"""{ "op": "neg", "args": [{{expr}}] }""";
        var e = Refused(Plan($$"""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post" }, { "op": "save", "name": "x", "value": {{expr}} }"""));
        Assert.Contains("deeper than 32", e.Message);
        // Deeper than the JSON parser allows: refused while parsing, still a plan error.
        for (int i = 0; i < 100; i++) expr = $$"""{ "op": "neg", "args": [{{expr}}] }""";
        Assert.ThrowsAny<PlanValidationException>(() => TracePlanJson.Parse(Plan($$"""{ "op": "save", "name": "x", "value": {{expr}} }""")));
    }

    [Fact]
    public void Huge_tensors_are_refused_before_allocation()
    {
        var e = Refused(Plan("""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post" }, { "op": "write", "hook": "blocks.0.hook_resid_post", "value": { "const": "big" } }""",
            """ "constants": { "big": { "shape": [100000, 100000, 100000], "data": [1] } }, """));
        Assert.Contains("constants.big.shape", e.Message);
        var tokens = string.Join(",", Enumerable.Repeat("[" + string.Join(",", Enumerable.Repeat(1, 20)) + "]", 4000));
        var e2 = Refused($$"""{ "sharplens_plan": 1, "invokes": [{ "tokens": [{{tokens}}] }], "ops": [] }""");
        Assert.Contains("limit", e2.Message);
        var e3 = Refused(Plan("""{ "op": "save", "name": "x", "value": { "scalar": 1 } }""", """ "generate": { "max_new_tokens": 100000 }, """));
        Assert.Contains("generate.max_new_tokens", e3.Message);
    }

    [Fact]
    public void A_matmul_too_large_to_hold_is_refused_at_run_before_it_allocates()
    {
        var limits = PlanLimits.Server with { MaxValueElements = 1_000 };
        var plan = TracePlanJson.Parse(Plan("""
            { "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "index": "[0]" },
            { "op": "save", "name": "x", "value": { "op": "matmul", "args": [{ "ref": "h" }, { "op": "index", "index": "[0:1]", "args": [{ "ref": "h" }] }] } }
            """));
        var e = Assert.Throws<PlanValidationException>(() => _model.Run(plan, limits));
        Assert.Contains("ops[1].value", e.Message);
    }

    [Fact]
    public void References_to_values_not_yet_read_are_refused_naming_both_hooks()
    {
        var e = Refused(Plan("""
            { "op": "write", "hook": "blocks.0.hook_resid_post", "value": { "ref": "later" } },
            { "op": "read", "id": "later", "hook": "blocks.1.hook_resid_post" }
            """));
        Assert.Contains("no earlier read", e.Message);
        var cross = Assert.Throws<TraceOrderException>(() => PlanValidator.Validate(TracePlanJson.Parse("""
            { "sharplens_plan": 1, "invokes": [{ "tokens": [[1, 2]] }, { "tokens": [[3, 4]] }], "ops": [
              { "op": "read", "id": "late", "hook": "blocks.1.hook_resid_post", "invoke": 0 },
              { "op": "write", "hook": "blocks.0.hook_resid_post", "invoke": 1, "value": { "ref": "late" } } ] }
            """), _layout));
        Assert.Contains("'blocks.0.hook_resid_post'", cross.Message);
        Assert.Contains("'blocks.1.hook_resid_post'", cross.Message);
    }

    [Fact]
    public void Malformed_json_and_bad_fields_are_plan_errors()
    {
        Assert.ThrowsAny<PlanValidationException>(() => TracePlanJson.Parse("{ not json"));
        Assert.Contains("surprise", Assert.ThrowsAny<PlanValidationException>(() => TracePlanJson.Parse("""{ "sharplens_plan": 1, "surprise": 3 }""")).Message);
        Assert.Contains("ops[0].index", Refused(Plan("""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "index": "[:, x]" }""")).Message);
        Assert.Contains("invokes[0].tokens[0][1]", Refused("""{ "sharplens_plan": 1, "invokes": [{ "tokens": [[1, 999]] }], "ops": [] }""").Message);
        Assert.Contains("ops[0].invoke", Refused(Plan("""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "invoke": 3 }""")).Message);
        Assert.Contains("sharplens_plan", Refused("""{ "sharplens_plan": 7, "invokes": [], "ops": [] }""").Message);
        Assert.Contains("ops[0].steps", Refused(Plan("""{ "op": "read", "id": "h", "hook": "blocks.0.hook_resid_post", "steps": "4" }""")).Message);
    }
}

/// <summary>The plan printed in the README is a valid plan, as written.</summary>
public sealed class ReadmePlanTests
{
    [Fact]
    public void The_readme_plan_parses_and_validates()
    {
        string readme = File.ReadAllText(Path.Combine(FindRoot(), "README.md"));
        int start = readme.IndexOf("```json\n{ \"sharplens_plan\": 1", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README shows a plan");
        start += "```json\n".Length;
        string json = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
        var plan = TracePlanJson.Parse(json, "README");
        var layout = TraceLayout.Of("tiny", TracedModelKind.Decoder, 2, 24, 50,
            ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post", "output"]);
        PlanValidator.Validate(plan, layout);
        Assert.Equal(5, plan.Ops.Count);
    }

    static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "SharpLens.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException("the repository root (SharpLens.slnx) above the test binaries");
    }
}
