using System.Text.RegularExpressions;
using SharpLens.Saes.Dashboards;
using SharpLens.Saes.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpLens.Tests.Saes.Dashboards;

public class DashboardTests
{
    const int Vocab = 20, Planted = 7;

    /// <summary>A stand-in model whose activation is the one-hot vector of the token [batch, pos, vocab].</summary>
    static readonly ActivationReader OneHot = tokens => [torch.nn.functional.one_hot(tokens, Vocab).to(ScalarType.Float32).DetachFromDisposeScope()];

    /// <summary>
    /// Feature 0 fires 3.0 on token 7 and nowhere else; feature 1 fires t/10 on token t (0 on token 0), so its interval
    /// samples can be checked against their tokens; feature 2 never fires.
    /// </summary>
    static readonly FeatureEncoder Planted3 = x =>
    {
        var f0 = 3f * x[.., Planted]; // [n]
        var f1 = x.matmul(torch.arange(Vocab, dtype: ScalarType.Float32) / 10f); // [n]
        return torch.stack([f0, f1, torch.zeros_like(f0)], 1); // [n, 3]
    };

    static IReadOnlyList<string> Names(IReadOnlyList<int> ids) => [.. ids.Select(i => $"t{i}")];

    static Tensor Tokens() => torch.randint(0, Vocab, [12, 16], generator: new Generator(4), dtype: ScalarType.Int64);

    [Fact]
    public void A_planted_token_feature_shows_exactly_that_token_at_its_top()
    {
        var tokens = Tokens();
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, tokens, Names,
            new FeatureDashboardOptions { Features = [0, 1, 2], TopExamples = 5, WindowBefore = 3, WindowAfter = 2, BatchSize = 5 });

        var text = tokens[.., 1..]; // position 0 (BOS) is left out
        long sevens = (text == Planted).sum().item<long>();
        var f0 = dashboard.Features[0];
        Assert.Equal(12 * 15, dashboard.TokensRead);
        Assert.Equal((double)sevens / (12 * 15), f0.Density, 12);
        Assert.Equal(3f, f0.MaxActivation);
        Assert.Equal(5, f0.TopExamples.Count);
        foreach (var example in f0.TopExamples)
        {
            Assert.Equal(3f, example.Activation);
            Assert.Equal(Planted, tokens[example.Context, example.Position].item<long>());
            Assert.Equal(new TokenActivation("t7", 3f), example.Window[example.Center]);
            for (int i = 0; i < example.Window.Count; i++)
            {
                int position = example.Position - example.Center + i; // position 0 is left out, so reads 0 even on t7
                Assert.Equal(example.Window[i].Token == "t7" && position > 0 ? 3f : 0f, example.Window[i].Activation);
            }
            Assert.True(example.Position >= 1);
        }
        // Every activation of feature 0 is 3.0, so all fall into the top interval and the histogram's last bin.
        Assert.Equal(sevens, f0.Intervals[^1].Count);
        Assert.All(f0.Intervals.SkipLast(1), i => Assert.Equal(0, i.Count));
        Assert.Equal(sevens, f0.Histogram!.Counts[^1]);

        Assert.Empty(dashboard.Features[2].TopExamples);
        Assert.Null(dashboard.Features[2].Histogram);
        Assert.Equal(0, dashboard.Features[2].Density);
    }

    [Fact]
    public void Interval_samples_lie_in_their_interval_and_counts_add_up()
    {
        var tokens = Tokens();
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, tokens, Names,
            new FeatureDashboardOptions { Features = [1], Intervals = 5, SamplesPerInterval = 4 });
        var f1 = dashboard.Features[0];
        var text = tokens[.., 1..];
        long max = text.max().item<long>();
        Assert.Equal(max / 10f, f1.MaxActivation, 6);
        Assert.Equal(5, f1.Intervals.Count);
        Assert.Equal((text > 0).sum().item<long>(), f1.Intervals.Sum(i => i.Count));
        for (int k = 0; k < 5; k++)
        {
            var interval = f1.Intervals[k];
            Assert.Equal(max / 10.0 * k / 5, interval.Low, 6);
            Assert.Equal(max / 10.0 * (k + 1) / 5, interval.High, 6);
            long expected = ((text.to(ScalarType.Float32) / 10 > interval.Low) & (text.to(ScalarType.Float32) / 10 <= interval.High + 1e-6)).sum().item<long>();
            Assert.Equal(expected, interval.Count);
            Assert.Equal((int)Math.Min(4, expected), interval.Samples.Count);
            foreach (var s in interval.Samples)
            {
                Assert.InRange(s.Activation, interval.Low + 1e-6, interval.High + 1e-6);
                Assert.Equal(tokens[s.Context, s.Position].item<long>() / 10f, s.Activation, 6);
            }
        }
    }

    [Fact]
    public void Excluded_tokens_are_neither_counted_nor_shown()
    {
        var tokens = Tokens();
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, tokens, Names, new FeatureDashboardOptions { Features = [0, 1], ExcludedTokenIds = [Planted, 4] });
        var text = tokens[.., 1..];
        long kept = ((text != Planted) & (text != 4)).sum().item<long>();
        Assert.Equal(kept, dashboard.TokensRead);
        Assert.Equal(0, dashboard.Features[0].Density);
        Assert.Empty(dashboard.Features[0].TopExamples);
        Assert.Equal((double)((text != Planted) & (text != 4) & (text != 0)).sum().item<long>() / kept, dashboard.Features[1].Density, 12);
        Assert.All(dashboard.Features[1].Intervals.SelectMany(i => i.Samples), s => Assert.NotEqual(0.4f, s.Activation, 6));
    }

    [Fact]
    public void Features_are_chosen_by_density_when_none_are_named()
    {
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, Tokens(), Names, new FeatureDashboardOptions { TopByDensity = 5 });
        // Feature 1 fires on every token but t0, feature 0 on t7 only, feature 2 never (so it is not shown).
        Assert.Equal([1, 0], dashboard.Features.Select(f => f.Feature));
    }

    [Fact]
    public void Logit_effects_are_the_decoder_row_through_the_unembedding()
    {
        var W_dec = torch.zeros(3, Vocab);
        W_dec[0, Planted] = 2f;
        W_dec[0, 3] = -1f;
        var W_U = torch.eye(Vocab) + 0.01f * torch.arange(Vocab, dtype: ScalarType.Float32).unsqueeze(0); // [d_in, d_vocab]
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, Tokens(), Names, new FeatureDashboardOptions { Features = [0], LogitTokens = 3 }, W_dec, W_U);
        var expected = W_dec[0].matmul(W_U); // [d_vocab]
        var f0 = dashboard.Features[0];
        Assert.Equal(new LogitEffect(Planted, "t7", expected[Planted].item<float>()), f0.TopLogits![0]);
        Assert.Equal(new LogitEffect(3, "t3", expected[3].item<float>()), f0.BottomLogits![0]);
        Assert.Equal(3, f0.TopLogits.Count);
        Assert.Null(dashboard.LogitNote);

        var mismatched = FeatureDashboard.Build(OneHot, Planted3, Tokens(), Names, new FeatureDashboardOptions { Features = [0] }, torch.zeros(3, 5), W_U);
        Assert.Null(mismatched.Features[0].TopLogits);
        Assert.Contains("W_dec [3, 5]", mismatched.LogitNote);
    }

    [Fact]
    public void The_page_is_one_balanced_html_file_with_no_external_urls()
    {
        var W_U = torch.eye(Vocab);
        var dashboard = FeatureDashboard.Build(OneHot, Planted3, Tokens(), tokens => [.. tokens.Select(i => i == 5 ? "<b>&\"" : $" t{i}")],
            new FeatureDashboardOptions { Features = [0, 1, 2] }, torch.eye(3, Vocab), W_U, title: "Planted features");
        string html = dashboard.ToHtml();

        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotMatch(new Regex("(src|href)=\"(?!#)"), html);
        Assert.DoesNotContain("<b>", html); // a token's text is escaped, never markup
        Assert.Contains("&lt;b&gt;&amp;&quot;", html);
        Assert.Contains("id=\"search\"", html);
        foreach (int f in new[] { 0, 1, 2 })
        {
            Assert.Contains($"id=\"feature-{f}\"", html);
            Assert.Contains($"href=\"#feature-{f}\"", html);
        }
        Assert.Contains("title=\"&#160;t7: 3.0000\"", html); // hovering the planted token shows it and its value
        AssertBalanced(html);
    }

    /// <summary>Every element that must be closed is closed, in order (void elements and self-closed SVG elements excepted).</summary>
    static void AssertBalanced(string html)
    {
        string[] voids = ["meta", "input", "br", "img", "hr", "link", "!DOCTYPE"];
        var stack = new Stack<string>();
        string withoutScripts = Regex.Replace(html, "<(script|style)>.*?</\\1>", "", RegexOptions.Singleline);
        foreach (Match m in Regex.Matches(withoutScripts, "<(/?)([!A-Za-z][A-Za-z0-9]*)([^>]*?)(/?)>"))
        {
            string name = m.Groups[2].Value;
            if (voids.Contains(name, StringComparer.OrdinalIgnoreCase) || m.Groups[4].Value == "/") continue;
            if (m.Groups[1].Value == "") { stack.Push(name); continue; }
            Assert.True(stack.Count > 0 && stack.Peek() == name, $"</{name}> at {m.Index} closes <{(stack.Count > 0 ? stack.Peek() : "nothing")}>");
            stack.Pop();
        }
        Assert.Empty(stack);
    }
}
