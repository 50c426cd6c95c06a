using Burnrate.Configuration;
using Burnrate.Storage;

namespace Burnrate.Tests.Configuration;

public sealed class RetentionConfigTests
{
    [Fact]
    public void Without_a_retention_section_minutes_are_kept_35_days_hours_400_and_days_forever()
    {
        var policy = new BurnrateConfig().ToRetentionPolicy();

        Assert.Equal(new RetentionPolicy { Minutes = TimeSpan.FromDays(35), Hours = TimeSpan.FromDays(400), Days = null }, policy);
        Assert.Equal(RetentionPolicy.Default, policy);
    }

    [Fact]
    public void Each_resolution_takes_a_duration_or_forever()
    {
        var policy = BurnrateConfig.Parse("""
            storage:
              retention:
                minutes: 2w
                hours: forever
            """).ToRetentionPolicy();

        Assert.Equal(new RetentionPolicy { Minutes = TimeSpan.FromDays(14), Hours = null, Days = null }, policy);
        Assert.False(BurnrateConfig.Parse("storage:\n  retention:\n    minutes: forever\n    hours: forever\n").ToRetentionPolicy().DropsAnything);
    }

    [Theory]
    [InlineData("minutes: 6h", "storage.retention.minutes")]
    [InlineData("minutes: soon", "storage.retention.minutes")]
    [InlineData("minutes: 90d\n    hours: 30d", "storage.retention.hours")]
    [InlineData("minutes: forever", "storage.retention.hours")]
    [InlineData("days: 100d", "storage.retention.days")]
    public void A_retention_that_cannot_work_is_refused_naming_its_key(string keys, string named)
    {
        var error = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("storage:\n  retention:\n    " + keys + "\n", "burnrate.yaml"));

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("burnrate.yaml", error.Message, StringComparison.Ordinal);
    }
}
