using System.Text.Json;
using SharpLens.Tokenization;
using SharpLens.Tokenization.ChatTemplates;

namespace SharpLens.Tests.Tokenization;

/// <summary>
/// The chat templates of Llama 3, Gemma 2 / 3, Qwen 2.5 / 3 and Mistral as their models ship them, rendered against
/// renderings recorded elsewhere (Fixtures/chat_templates/templates.json), and refusals of constructs the subset lacks.
/// </summary>
public class ChatTemplateTests
{
    static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "chat_templates", "templates.json");

    public static TheoryData<string> Names()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture));
        var data = new TheoryData<string>();
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void Renders_exactly_as_transformers_does(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture));
        var c = doc.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        var template = new ChatTemplate(c.GetProperty("template").GetString()!);
        var messages = c.GetProperty("messages").EnumerateArray().Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        var special = c.GetProperty("special").EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.GetString());
        string rendered = template.Render(messages, c.GetProperty("add_generation_prompt").GetBoolean(), special);
        Assert.Equal(c.GetProperty("expected").GetString(), rendered);
    }

    [Fact]
    public void Raise_exception_in_a_template_becomes_a_clear_error()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture));
        var gemma2 = doc.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == "gemma2");
        var template = new ChatTemplate(gemma2.GetProperty("template").GetString()!);
        var e = Assert.Throws<ChatTemplateException>(() => template.Render([new("system", "x"), new("user", "y")], true));
        Assert.Contains("System role not supported", e.Message);
    }

    [Theory]
    [InlineData("{% macro greet(x) %}hi{% endmacro %}", "'{% macro %}'")]
    [InlineData("{{ messages | map(attribute='role') | join(',') }}", "filter 'map'")]
    [InlineData("{% for m in messages %}{{ m.content.format(1) }}{% endfor %}", "str.format")]
    [InlineData("{% include 'other.jinja' %}", "'{% include %}'")]
    [InlineData("{{ cycler('a', 'b') }}", "cycler()")]
    [InlineData("{% if messages %}never closed", "no endif")]
    public void A_template_using_an_unsupported_construct_is_refused_naming_it(string source, string named)
    {
        var e = Assert.ThrowsAny<ChatTemplateException>(() => new ChatTemplate(source).Render([new("user", "hello")], true));
        Assert.Contains(named, e.Message);
        Assert.IsAssignableFrom<SharpLensException>(e);
    }

    [Fact]
    public void Whitespace_control_follows_trim_blocks_and_lstrip_blocks()
    {
        var t = new ChatTemplate("{% for m in messages %}\n    [{{ m.role }}]\n{% endfor %}\n{%- if add_generation_prompt %}  >{% endif %}");
        Assert.Equal("    [user]\n    [assistant]\n  >", t.Render([new("user", "a"), new("assistant", "b")], true));
        var s = new ChatTemplate("a  {%- if true -%}  b  {%- endif %} c {{- ' d ' -}} e");
        Assert.Equal("ab c d e", s.Render([], false));
    }

    [Fact]
    public void A_tokenizer_folder_applies_its_chat_template()
    {
        using var folder = new SharpLens.Tests.Loading.TempFolder();
        string source = Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "spm-gemma");
        File.Copy(Path.Combine(source, "tokenizer.model"), folder.File("tokenizer.model"));
        using var doc = JsonDocument.Parse(File.ReadAllText(Fixture));
        var gemma3 = doc.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == "gemma3");
        File.WriteAllText(folder.File("tokenizer_config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["tokenizer_class"] = "GemmaTokenizer", ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["chat_template"] = gemma3.GetProperty("template").GetString()!,
        }));
        var tokenizer = HuggingFaceTokenizerFiles.Load(folder.Path);
        string prompt = tokenizer.ApplyChatTemplate([new("user", "hello")], addGenerationPrompt: true);
        Assert.Equal("<s><start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", prompt);
        var ids = tokenizer.Encode(prompt);
        Assert.Equal(1, ids[0]); // the template's bos_token, matched whole
        Assert.Contains(tokenizer.Encode("<start_of_turn>")[0], ids);
    }
}
