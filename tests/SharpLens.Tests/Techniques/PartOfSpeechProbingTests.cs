using SharpLens.Corpora;
using SharpLens.Techniques;
using SharpLens.Tests.Encoder;

namespace SharpLens.Tests.Techniques;

/// <summary>Part-of-speech probing with the control task (Hewitt &amp; Liang 2019) on all-MiniLM-L6-v2.</summary>
[Collection("minilm")]
public sealed class PartOfSpeechProbingTests(MiniLmFixture fx)
{
    [Theory]
    [InlineData("nn", "nn")]
    [InlineData("nn-tl", "nn")]
    [InlineData("np-hl", "np")]
    [InlineData("fw-nn", "nn")]
    [InlineData("ppss+md", "ppss")]
    [InlineData("bez*", "bez")]
    [InlineData("--", "--")]
    [InlineData("*", "*")]
    [InlineData("np$", "np$")]
    public void Brown_tags_lose_their_title_headline_foreign_compound_and_negation_marks(string tag, string expected) =>
        Assert.Equal(expected, PartOfSpeechProbing.BaseTag(tag));

    [Fact]
    public void The_control_task_gives_each_word_type_one_tag_drawn_from_the_training_distribution()
    {
        var train = Enumerable.Repeat(0, 700).Concat(Enumerable.Repeat(1, 300)).ToList();
        var types = Enumerable.Range(0, 4000).Select(i => $"w{i % 2000}").ToList(); // every type twice
        var control = PartOfSpeechProbing.ControlTags(types, train, seed: 4);
        Assert.Equal(2000, control.Count);
        double share = control.Values.Count(v => v == 0) / 2000.0;
        Assert.InRange(share, 0.65, 0.75); // 0.7 expected; 4.4 standard deviations either side
        Assert.Equal(control, PartOfSpeechProbing.ControlTags(types, train, seed: 4));
        Assert.NotEqual(control, PartOfSpeechProbing.ControlTags(types, train, seed: 5));
    }

    /// <summary>
    /// Sentences of words in random order, each word type with one tag, some words several word pieces long: at the
    /// embeddings a word's tag is readable only from its own first piece (a misaligned read sees a neighbour, whose tag
    /// is unrelated), so near-perfect accuracy there means the words and pieces line up.
    /// </summary>
    [Fact]
    public void Tags_are_read_at_each_words_first_piece_at_every_depth()
    {
        var lexicon = new (string Tag, string[] Words)[]
        {
            ("nn", ["dog", "house", "river", "xylophonist", "teacher", "window", "garden", "unbelievability"]),
            ("vbd", ["walked", "sang", "opened", "photosynthesized", "carried", "jumped"]),
            ("jj", ["green", "quiet", "enormous", "perspicacious", "cold", "happy"]),
            ("in", ["under", "beside", "through", "with"]),
            ("at", ["the", "a", "every"]),
        };
        var random = new Random(11);
        var sentences = Enumerable.Range(0, 96).Select(i =>
        {
            var words = Enumerable.Range(0, 5 + random.Next(5)).Select(_ =>
            {
                var (tag, list) = lexicon[random.Next(lexicon.Length)];
                return new TaggedWord(list[random.Next(list.Length)], tag + (random.Next(4) == 0 ? "-tl" : ""));
            }).ToList();
            return new BrownSentence($"x{i:00}", "synthetic", words);
        }).ToList();
        int totalWords = sentences.Sum(s => s.Words.Count);

        var settings = new PosProbeSettings { Sentences = 96, Seed = 2, Probe = new ProbeSettings { Steps = 150 } };
        var result = PartOfSpeechProbing.Run(fx.Model, sentences, settings);

        Assert.Equal(PartOfSpeechProbing.Hooks(fx.Model), result.Layers.Select(l => l.Hook));
        Assert.Equal(7, result.Layers.Count);
        var byFrequency = sentences.SelectMany(s => s.Words).GroupBy(w => w.Tag.Replace("-tl", "")).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => g.Key);
        Assert.Equal(byFrequency, result.Tags); // "-tl" stripped, ordered by frequency
        Assert.Equal(totalWords, result.TrainWords + result.TestWords);
        Assert.Equal(24, result.TestSentences);
        Assert.InRange(result.MajorityBaseline, 0.15, 0.45);
        Assert.True(result.Layers[0].RealTestAccuracy >= 0.95, $"embeddings: {result.Layers[0].RealTestAccuracy}");
        // Every test type was seen in training, so the control task is memorisable too: the probe can learn word identity.
        Assert.True(result.Layers[0].ControlTestAccuracy >= 0.9, $"control at the embeddings: {result.Layers[0].ControlTestAccuracy}");
        foreach (var l in result.Layers) Assert.Equal(l.RealTestAccuracy - l.ControlTestAccuracy, l.Selectivity, 12);
    }

    [Fact]
    public void Bad_settings_name_the_option()
    {
        Assert.Equal("--sentences", Assert.Throws<SharpLensArgumentException>(() => new PosProbeSettings { Sentences = 2 }.Validated()).ParamName);
        Assert.Equal("--test-fraction", Assert.Throws<SharpLensArgumentException>(() => new PosProbeSettings { TestFraction = 1 }.Validated()).ParamName);
        var tooFew = Assert.Throws<SharpLensArgumentException>(() => PartOfSpeechProbing.Sample([], new PosProbeSettings()));
        Assert.Contains("--sentences", tooFew.Message);
    }
}
