using Burnrate.Configuration;

namespace Burnrate.Tests.Configuration;

public sealed class BurnrateConfigTests
{
    [Fact]
    public void The_example_of_the_product_contract_parses()
    {
        var config = BurnrateConfig.Parse("""
            storage:
              duckdb: ./burnrate-data/burnrate.duckdb
            rules:
              - name: idle-gpu
                kind: idle_gpu
                utilization_below: 0.30
                for: 10m
              - name: spot-fallback
                kind: capacity_fallback
            notify:
              - webhook: http://127.0.0.1:9999/hook
              - alertmanager: http://127.0.0.1:9093
            """);

        Assert.Equal("./burnrate-data/burnrate.duckdb", config.DuckDbPath("/elsewhere"));
        Assert.Equal(2, config.ToAlertRules().Count);
    }

    [Fact]
    public void Rating_and_attribution_sections_become_options_and_rules()
    {
        var config = BurnrateConfig.Parse("""
            rating:
              grace: 45s
              staleness: 2m
              spot_falls_back_to_on_demand: false
            attribution:
              - match: { namespace: "search-*" }
                set: { team: search }
            """);

        var options = config.ToRatingOptions();
        Assert.Equal(TimeSpan.FromSeconds(45), options.Grace);
        Assert.Equal(TimeSpan.FromMinutes(2), options.Staleness);
        Assert.False(options.SpotFallsBackToOnDemand);
        Assert.Equal(1, config.ToAttributionRules().Count);
    }

    [Fact]
    public void An_unknown_key_is_an_error_naming_its_line()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("storage:\n  duckdb: x\nratting:\n  grace: 1s\n", "burnrate.yaml"));
        Assert.StartsWith("burnrate.yaml:3:", e.Message, StringComparison.Ordinal);
        Assert.Contains("ratting", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_bad_duration_is_an_error_naming_the_key()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("rating:\n  grace: soon\n"));
        Assert.Contains("rating.grace", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Attribution_may_only_set_known_fields()
    {
        var e = Assert.Throws<ConfigException>(() => BurnrateConfig.Parse("attribution:\n  - set: { owner: x }\n"));
        Assert.Contains("owner", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("15m", 900)]
    [InlineData("2h", 7200)]
    [InlineData("1h30m", 5400)]
    [InlineData("7d", 604800)]
    public void Durations_parse(string text, int seconds)
    {
        Assert.True(Durations.TryParse(text, out var d));
        Assert.Equal(TimeSpan.FromSeconds(seconds), d);
    }

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("5 parsecs")]
    [InlineData("m")]
    public void Bad_durations_are_refused(string text) => Assert.False(Durations.TryParse(text, out _));
}
