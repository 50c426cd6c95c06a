using Burnrate.Configuration;

namespace Burnrate.Tests.Configuration;

public sealed class ClickHouseConfigTests
{
    [Fact]
    public void The_clickhouse_section_gives_the_stores_options()
    {
        var config = BurnrateConfig.Parse("""
            storage:
              store: clickhouse
              clickhouse:
                urls: [http://ch1:8123, http://ch2:8123]
                database: costs
                cluster: burnrate
                replicated: true
                user: burnrate
                password_env: CH_PASSWORD
                timeout: 20s
            """);

        var options = config.ToClickHouseOptions(name => name == "CH_PASSWORD" ? "s3cret" : null)!;

        Assert.Equal([new Uri("http://ch1:8123"), new Uri("http://ch2:8123")], options.Urls);
        Assert.Equal("costs", options.Database);
        Assert.Equal("burnrate", options.Cluster);
        Assert.True(options.Replicated);
        Assert.Equal("burnrate", options.User);
        Assert.Equal("s3cret", options.Password);
        Assert.Equal(TimeSpan.FromSeconds(20), options.Timeout);
    }

    [Fact]
    public void Without_a_store_key_the_ledger_stays_embedded()
    {
        Assert.Null(new BurnrateConfig().ToClickHouseOptions());
        Assert.Null(BurnrateConfig.Parse("storage:\n  store: duckdb\n").ToClickHouseOptions());
    }

    [Theory]
    [InlineData("storage:\n  store: cassandra\n", "storage.store: 'cassandra'")]
    [InlineData("storage:\n  store: clickhouse\n", "storage.clickhouse is missing")]
    [InlineData("storage:\n  store: clickhouse\n  clickhouse:\n    urls: []\n", "at least one")]
    [InlineData("storage:\n  store: clickhouse\n  clickhouse:\n    urls: [ch1:8123]\n", "not an http(s) URL")]
    [InlineData("storage:\n  store: clickhouse\n  clickhouse:\n    urls: [http://ch1:8123]\n    database: \"x; DROP\"\n", "storage.clickhouse.database")]
    [InlineData("storage:\n  store: clickhouse\n  clickhouse:\n    urls: [http://ch1:8123]\n    replicated: true\n", "needs storage.clickhouse.cluster")]
    [InlineData("storage:\n  store: clickhouse\n  clickhouse:\n    urls: [http://ch1:8123]\n    timeout: 0s\n", "storage.clickhouse.timeout")]
    public void A_bad_clickhouse_section_is_refused_naming_the_key(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse(yaml, "burnrate.yaml"));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_password_variable_that_is_not_set_is_an_error_when_serving()
    {
        var config = BurnrateConfig.Parse("storage:\n  store: clickhouse\n  clickhouse:\n    urls: [http://ch1:8123]\n    password_env: NOPE\n");

        var e = Assert.Throws<ArgumentException>(() => config.ToClickHouseOptions(_ => null));

        Assert.Contains("NOPE is not set", e.Message, StringComparison.Ordinal);
    }
}
