using Burnrate.Configuration;

namespace Burnrate.Tests.Configuration;

public sealed class RulerConfigTests
{
    [Fact]
    public void The_ruler_section_gives_the_election_catch_up_and_late_window()
    {
        var options = BurnrateConfig.Parse("ruler:\n  interval: 2s\n  lease: 9s\n  max_catch_up: 30m\n  late_window: 5m\n").ToRulerOptions();

        Assert.Equal(TimeSpan.FromSeconds(2), options.Interval);
        Assert.Equal(TimeSpan.FromSeconds(9), options.EffectiveLease);
        Assert.Equal(TimeSpan.FromMinutes(30), options.MaxCatchUp);
        Assert.Equal(TimeSpan.FromMinutes(5), options.LateWindow);
    }

    [Fact]
    public void Without_them_the_lease_is_three_intervals_catch_up_an_hour_and_the_late_window_ten_minutes()
    {
        var options = BurnrateConfig.Parse("ruler:\n  interval: 4s\n").ToRulerOptions();

        Assert.Equal(TimeSpan.FromSeconds(12), options.EffectiveLease);
        Assert.Equal(TimeSpan.FromHours(1), options.MaxCatchUp);
        Assert.Equal(TimeSpan.FromMinutes(10), options.LateWindow);
    }

    [Theory]
    [InlineData("ruler:\n  interval: 5s\n  lease: 5s\n", "ruler.lease")]
    [InlineData("ruler:\n  max_catch_up: 30s\n", "ruler.max_catch_up")]
    [InlineData("ruler:\n  late_window: soon\n", "ruler.late_window")]
    public void A_bad_ruler_key_is_refused_naming_it(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
