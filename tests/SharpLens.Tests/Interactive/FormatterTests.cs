using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive.Formatting;
using SharpLens.Interactive;
using SharpLens.Reports;
using SharpLens.Techniques;
using SharpLens.Techniques.Patching;
using SharpLens.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Interactive;

/// <summary>
/// What a notebook shows for SharpLens objects once SharpLens.Interactive has registered its formatters: the same
/// Formatter.ToDisplayString call the .NET Interactive kernel makes for a cell's value.
/// </summary>
public sealed class FormatterTests
{
    static FormatterTests() => SharpLensFormatters.Register();

    static string Html(object o) => Formatter.ToDisplayString(o, SharpLensFormatters.MimeType);

    [Fact]
    public void A_tensor_shows_shape_dtype_statistics_and_its_corner_not_all_of_it()
    {
        using var t = arange(0, 2 * 3 * 20 * 30, dtype: ScalarType.Float32).reshape(2, 3, 20, 30);
        string html = Html(t);
        Assert.Contains("tensor [2, 3, 20, 30] float32 on cpu", html);
        Assert.Contains("t[0, 0, :, :]", html);
        Assert.Contains("<div class=\"sl-value\">3,600</div>", html.Replace("3.600", "3,600")); // elements
        Assert.Contains("<div class=\"sl-value\">3599</div>", html); // max
        Assert.Contains("<td>331</td>", html);   // t[0, 0, 11, 1]: inside the 12 x 12 corner
        Assert.DoesNotContain("<td>12</td>", html); // t[0, 0, 0, 12]: column 12 is not shown
        Assert.Contains("… 18 more", html);
        Assert.Contains("… 8 more", html);
        Assert.Equal(1 + 12 + 1, Regex.Matches(html, "<tr>").Count); // the header, 12 rows, the "… 8 more" row
    }

    [Fact]
    public void Parameters_scalars_and_bool_tensors_use_the_tensor_formatter_too()
    {
        using var p = new TorchSharp.Modules.Parameter(ones(3));
        Assert.Contains("tensor [3] float32 on cpu, requires grad", Html(p));
        using var s = tensor(2.5f);
        Assert.Contains("<div class=\"sl-value\">2.5</div>", Html(s));
        using var b = tensor(new[] { true, false });
        Assert.Contains("<td>true</td><td>false</td>", Html(b));
    }

    [Fact]
    public void Attention_patterns_show_one_heatmap_per_head_with_the_tokens_on_both_axes()
    {
        using var model = TestModels.RandomModel();
        using var tokens = TestModels.RandomTokens(1, 6, 50);
        var (logits, cache) = model.RunWithCache(tokens, name => name.EndsWith("hook_pattern"));
        using (logits) using (cache)
        {
            string html = Html(AttentionPatterns.FromCache(cache, 1, ["a", "b", "c", "d", "e", "f"]));
            Assert.Contains("layer 1 attention patterns (blocks.1.attn.hook_pattern)", html);
            Assert.Equal(4, Regex.Matches(html, "<svg").Count);
            Assert.Equal(4 * 36, Regex.Matches(html, "<rect").Count);
            Assert.Contains(">5 f</text>", html);
            // The first query sees only itself: its one visible cell holds all the attention.
            Assert.Contains("0 a → 0 a: 1.000", html);
            Assert.Contains("ActivationCache: 2 activations", Html(cache));
            var error = Assert.Throws<SharpLensException>(() => AttentionPatterns.FromCache(cache, 1, ["a"]));
            Assert.Contains("6 positions but 1 token labels", error.Message);
        }
    }

    [Fact]
    public void The_logit_lens_shows_the_top_token_per_row_and_position()
    {
        using var model = TestModels.RandomModel();
        using var tokens = TestModels.RandomTokens(1, 5, 50);
        using var lens = LogitLens.Run(model, tokens);
        string html = Html(lens);
        Assert.Contains("Logit lens: top token per layer and position", html);
        var top = lens.TopTokens(2, 4, k: 1)[0]; // the model's own output at the last position
        Assert.Contains($"#{top.Token}<small>{top.Probability.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)}</small>", html);
        Assert.Equal(3 * 5, Regex.Matches(html, "<td style=").Count);
    }

    [Fact]
    public void A_patching_sweep_is_an_annotated_heatmap_and_a_loss_curve_a_line_plot()
    {
        using var model = TestModels.RandomModel();
        using var pairs = PromptPairs.FromTokens([5, 17, 42, 8, 9, 23, 17, 42], [5, 17, 42, 8, 9, 23, 31, 42], 3, 7);
        using var result = ActivationPatching.Sweep(model, pairs, "resid_pre");
        string html = Html(result);
        Assert.Contains("Activation patching: resid_pre [layer, pos]", html);
        Assert.Equal(2 * 8, Regex.Matches(html, "<rect").Count);
        Assert.Contains("forward passes", html);

        string curve = Html(new TrainingRecord([4.0, 3.0, 2.5], TimeSpan.FromSeconds(1.5)));
        Assert.Contains("Training: 3 steps in 1.5 s", curve);
        Assert.Contains("<polyline", curve);
    }

    [Fact]
    public void A_whole_report_goes_in_an_iframe_so_its_stylesheet_stays_inside()
    {
        string html = Html(new HtmlReport("My <report>").Paragraph("x & y"));
        Assert.StartsWith("<div class=\"sharplens\">", html);
        Assert.Contains("<iframe", html);
        Assert.Contains("srcdoc=\"&lt;!DOCTYPE html&gt;", html);
        Assert.Contains("My &amp;lt;report&amp;gt;", html); // escaped once by the report, once for the attribute
        Assert.DoesNotContain("<body>", html);
    }
}
