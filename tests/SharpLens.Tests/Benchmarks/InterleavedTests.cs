using SharpLens.Benchmarks;

namespace SharpLens.Tests.Benchmarks;

/// <summary>The benchmarks' interleaved timing: every round runs each variant once, ratios are per round.</summary>
public class InterleavedTests
{
    [Fact]
    public void Each_round_runs_every_variant_once_in_a_rotating_order()
    {
        var order = new List<string>();
        var timings = Interleaved.Measure([("a", () => order.Add("a")), ("b", () => order.Add("b")), ("c", () => order.Add("c"))], rounds: 3, warmUp: false);
        Assert.Equal(["a", "b", "c", "b", "c", "a", "c", "a", "b"], order);
        Assert.All(new[] { "a", "b", "c" }, name => Assert.Equal(3, timings.Seconds(name).Count));
    }

    [Fact]
    public void Spread_is_the_median_with_its_min_and_max()
    {
        Assert.Equal(new Spread(2, 1, 9), Spread.Of([9, 1, 2]));
        Assert.Equal(new Spread(2.5, 1, 9), Spread.Of([9, 1, 2, 3]));
        Assert.Equal("1.500 (1.000–2.000)", new Spread(1.5, 1, 2).Format());
    }
}
