using System.Text.Json;
using Burnrate.Storage;

namespace Burnrate.Tests.Cli;

public sealed class ReportCommandTests
{
    private static FakeCostStore TwoTeams() => new(
        Some.Row(25m, idle: 5m, gpuHours: 10m, keys: ["infra", "serving"]),
        Some.Row(75m, idle: 0m, gpuHours: 30m, keys: ["ml", "llm"]));

    [Fact]
    public async Task Table_shows_each_group_with_dollars_share_and_a_total_row()
    {
        using var cli = new CliHarness(TwoTeams());

        var exit = await cli.RunAsync("report", "--by", "team,project");

        Assert.Equal(0, exit);
        var lines = cli.Output.ToString().Split('\n');
        var ml = Assert.Single(lines, l => l.Contains("ml", StringComparison.Ordinal) && l.Contains("llm", StringComparison.Ordinal));
        Assert.Contains("$75.00", ml, StringComparison.Ordinal);
        Assert.Contains("75.0%", ml, StringComparison.Ordinal);
        Assert.Contains("30.00", ml, StringComparison.Ordinal);
        var total = Assert.Single(lines, l => l.Contains("total", StringComparison.Ordinal) && l.Contains('$'));
        Assert.Contains("$100.00", total, StringComparison.Ordinal);
        Assert.Contains("$5.00", total, StringComparison.Ordinal);
        Assert.Contains("100.0%", total, StringComparison.Ordinal);
        Assert.True(Array.FindIndex(lines, l => l.Contains("llm", StringComparison.Ordinal)) < Array.FindIndex(lines, l => l.Contains("serving", StringComparison.Ordinal)),
            "the most expensive group comes first");
    }

    [Fact]
    public async Task Sub_cent_costs_show_two_significant_digits_instead_of_zero()
    {
        using var cli = new CliHarness(new FakeCostStore(Some.Row(0.0042m, keys: ["ml"])));

        Assert.Equal(0, await cli.RunAsync("report", "--by", "team"));

        Assert.Contains("$0.0042", cli.Output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Csv_has_a_header_and_exact_dollars_with_nine_decimals()
    {
        using var cli = new CliHarness(new FakeCostStore(Some.Row(1.000000001m, idle: 0.5m, gpuHours: 0.25m, keys: ["ml, research"])));

        Assert.Equal(0, await cli.RunAsync("report", "--by", "team", "--format", "csv"));

        Assert.Equal("team,cost_usd,idle_usd,gpu_hours\n\"ml, research\",1.000000001,0.500000000,0.250000\n", cli.Output.ToString());
    }

    [Fact]
    public async Task Csv_with_a_step_has_a_bucket_column()
    {
        var bucket = new DateTimeOffset(2025, 6, 15, 11, 0, 0, TimeSpan.Zero);
        using var cli = new CliHarness(new FakeCostStore(Some.Row(2m, bucket: bucket, keys: ["aws"])));

        Assert.Equal(0, await cli.RunAsync("report", "--by", "cloud", "--step", "1h", "--format", "csv"));

        Assert.Equal("cloud,bucket,cost_usd,idle_usd,gpu_hours\naws,2025-06-15T11:00:00Z,2.000000000,0.000000000,1.000000\n", cli.Output.ToString());
    }

    [Fact]
    public async Task Json_is_an_array_of_rows_with_dimensions_and_exact_dollar_strings()
    {
        using var cli = new CliHarness(TwoTeams());

        Assert.Equal(0, await cli.RunAsync("report", "--by", "team,project", "--format", "json"));

        using var document = JsonDocument.Parse(cli.Output.ToString());
        var rows = document.RootElement.EnumerateArray().ToArray();
        Assert.Equal(2, rows.Length);
        Assert.Equal("ml", rows[0].GetProperty("team").GetString());
        Assert.Equal("llm", rows[0].GetProperty("project").GetString());
        Assert.Equal("75.000000000", rows[0].GetProperty("cost_usd").GetString());
        Assert.Equal("0.000000000", rows[0].GetProperty("idle_usd").GetString());
        Assert.Equal(30m, rows[0].GetProperty("gpu_hours").GetDecimal());
        Assert.Equal(JsonValueKind.Null, rows[0].GetProperty("bucket").ValueKind);
    }

    [Fact]
    public async Task Without_from_and_to_the_report_covers_the_last_seven_days()
    {
        var store = new FakeCostStore();
        using var cli = new CliHarness(store);

        Assert.Equal(0, await cli.RunAsync("report", "--by", "team"));

        var query = Assert.Single(store.Queries);
        Assert.Equal(CliHarness.Now.AddDays(-7), query.From);
        Assert.Equal(CliHarness.Now, query.To);
        Assert.Equal(cli.DataDirectory, cli.OpenedDirectory);
        Assert.True(store.Disposed);
    }

    [Fact]
    public async Task Range_step_and_filters_reach_the_store()
    {
        var store = new FakeCostStore();
        using var cli = new CliHarness(store);

        Assert.Equal(0, await cli.RunAsync("report", "--by", "provider,gpu", "--from", "2025-06-01T00:00:00Z", "--to", "-2h",
            "--step", "1d", "--filter", "team=ml,infra", "--filter", "capacity=spot"));

        var query = Assert.Single(store.Queries);
        Assert.Equal(new DateTimeOffset(2025, 6, 1, 0, 0, 0, TimeSpan.Zero), query.From);
        Assert.Equal(CliHarness.Now.AddHours(-2), query.To);
        Assert.Equal([CostDimension.Cloud, CostDimension.Gpu], query.By);
        Assert.Equal(TimeSpan.FromDays(1), query.Step);
        Assert.Equal(["ml", "infra"], query.Filters[CostDimension.Team]);
        Assert.Equal(["spot"], query.Filters[CostDimension.Capacity]);
    }

    [Fact]
    public async Task Unknown_dimension_exits_2_and_lists_the_valid_ones()
    {
        var store = new FakeCostStore();
        using var cli = new CliHarness(store);

        Assert.Equal(2, await cli.RunAsync("report", "--by", "team,colour"));

        var error = cli.Errors.ToString();
        Assert.StartsWith("error: ", error, StringComparison.Ordinal);
        Assert.Contains("'colour'", error, StringComparison.Ordinal);
        Assert.Contains("instance_type", error, StringComparison.Ordinal);
        Assert.Empty(store.Queries);
    }

    [Theory]
    [InlineData("--from", "last tuesday")]
    [InlineData("--to", "-7x")]
    public async Task Bad_time_exits_2_and_names_the_option(string option, string value)
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("report", "--by", "team", option, value));

        Assert.StartsWith($"error: {option}: '{value}' is not a time", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task From_after_to_exits_2()
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("report", "--by", "team", "--from", "-1h", "--to", "-2h"));

        Assert.Contains("must be before --to", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--step", "90s")]
    [InlineData("--filter", "team")]
    [InlineData("--format", "xml")]
    [InlineData("--server", "not a url")]
    public async Task Other_bad_values_exit_2_with_an_error_line(string option, string value)
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("report", "--by", "team", option, value));

        Assert.StartsWith("error: ", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_by_is_a_usage_error()
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("report"));

        Assert.Contains("--by", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_ledger_exits_1_and_says_to_run_the_demo()
    {
        using var cli = new CliHarness(withLedger: false);

        Assert.Equal(1, await cli.RunAsync("report", "--by", "team"));

        Assert.Equal($"error: no ledger at {cli.DataDirectory}; run `burnrate demo` or `burnrate serve` first", cli.Errors.ToString().TrimEnd());
    }

    [Fact]
    public async Task Store_failure_exits_1_with_its_message()
    {
        using var cli = new CliHarness();
        var services = new Burnrate.Cli.CliServices
        {
            OpenStore = (_, _) => throw new InvalidOperationException("disk on fire"),
            LoadPriceBook = _ => new FakePriceBook(),
            Out = cli.Output,
            Error = cli.Errors,
        };

        var exit = await Burnrate.Cli.BurnrateCli.InvokeAsync(services, ["report", "--by", "team", "--data", cli.DataDirectory], TestContext.Current.CancellationToken);

        Assert.Equal(1, exit);
        Assert.Equal("error: disk on fire", cli.Errors.ToString().TrimEnd());
    }

    [Fact]
    public async Task Root_help_describes_burnrate_and_lists_verbs_and_global_options()
    {
        using var cli = new CliHarness();

        Assert.Equal(0, await cli.RunAsync("--help"));

        var help = cli.Output.ToString();
        Assert.Contains("real-time GPU cost monitor", help, StringComparison.Ordinal);
        Assert.Contains("report", help, StringComparison.Ordinal);
        Assert.Contains("prices", help, StringComparison.Ordinal);
        Assert.Contains("--data", help, StringComparison.Ordinal);
        Assert.Contains("--config", help, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_help_explains_defaults_and_global_options()
    {
        using var cli = new CliHarness();

        Assert.Equal(0, await cli.RunAsync("report", "--help"));

        var help = cli.Output.ToString();
        Assert.Contains("-7d", help, StringComparison.Ordinal);
        Assert.Contains("./burnrate-data", help, StringComparison.Ordinal);
        Assert.Contains("--config", help, StringComparison.Ordinal);
        Assert.Contains("--server", help, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Unknown_verb_exits_2()
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("frobnicate"));

        Assert.StartsWith("error: ", cli.Errors.ToString(), StringComparison.Ordinal);
    }
}
