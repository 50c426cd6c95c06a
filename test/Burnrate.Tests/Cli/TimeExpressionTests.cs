using Burnrate.Reporting;

namespace Burnrate.Tests.Cli;

public sealed class TimeExpressionTests
{
    private static DateTimeOffset Now { get; } = new(2025, 6, 15, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("-15m", 15 * 60)]
    [InlineData("-2h", 2 * 3600)]
    [InlineData("-7d", 7 * 86400)]
    [InlineData("-1w", 7 * 86400)]
    [InlineData("now-30s", 30)]
    [InlineData("now", 0)]
    [InlineData("NOW", 0)]
    public void Relative_times_count_back_from_now(string text, int secondsAgo)
    {
        Assert.True(TimeExpression.TryParse(text, Now, out var value));
        Assert.Equal(Now.AddSeconds(-secondsAgo), value);
    }

    [Fact]
    public void Rfc3339_with_an_offset_is_the_same_instant_in_utc()
    {
        Assert.True(TimeExpression.TryParse("2025-06-01T02:30:00+02:00", Now, out var value));
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 0, 30, 0, TimeSpan.Zero), value);
        Assert.Equal(TimeSpan.Zero, value.Offset);
    }

    [Fact]
    public void Rfc3339_with_z_and_fractional_seconds_is_parsed_exactly()
    {
        Assert.True(TimeExpression.TryParse("2025-06-01T00:00:00.250Z", Now, out var value));
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 0, 0, 0, 250, TimeSpan.Zero), value);
    }

    [Fact]
    public void A_date_alone_is_utc_midnight()
    {
        Assert.True(TimeExpression.TryParse("2025-06-01", Now, out var value));
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("yesterday")]
    [InlineData("7d")]
    [InlineData("-7x")]
    [InlineData("-d")]
    [InlineData("-0m")]
    [InlineData("2025-13-01T00:00:00Z")]
    [InlineData("15")]
    public void Text_that_is_no_time_is_refused(string text)
    {
        Assert.False(TimeExpression.TryParse(text, Now, out _));
    }

    [Theory]
    [InlineData("15m", "15m")]
    [InlineData("60m", "1h")]
    [InlineData("24h", "1d")]
    [InlineData("90s", "90s")]
    [InlineData("14d", "2w")]
    public void Durations_print_in_their_shortest_exact_form(string text, string expected)
    {
        Assert.True(TimeExpression.TryParseDuration(text, out var duration));
        Assert.Equal(expected, TimeExpression.FormatDuration(duration));
    }

    [Fact]
    public void Formatted_instants_are_rfc3339_utc_and_parse_back()
    {
        var instant = new DateTimeOffset(2025, 6, 1, 8, 0, 0, TimeSpan.FromHours(2));
        var text = TimeExpression.Format(instant);
        Assert.Equal("2025-06-01T06:00:00Z", text);
        Assert.True(TimeExpression.TryParse(text, Now, out var back));
        Assert.Equal(instant, back);
    }
}
