using System.Globalization;
using System.Text.Json;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Cli;

/// <summary><c>burnrate top</c> against a server fed by the simulator: its snapshot is the server's burn, sorted.</summary>
public sealed class TopCommandTests
{
    private sealed record Row(string Workload, string Name, string Team, string User, string Clouds, string PerHour, string Total)
    {
        public decimal Rate => decimal.Parse(PerHour, CultureInfo.InvariantCulture);
        public decimal Cost => decimal.Parse(Total, CultureInfo.InvariantCulture);
    }

    private static List<Row> Rows(JsonElement root) =>
        [.. root.GetProperty("workloads").EnumerateArray().Select(w => new Row(
            w.GetProperty("workload").GetString()!, w.GetProperty("name").GetString()!, w.GetProperty("team").GetString()!,
            w.GetProperty("user").GetString()!, w.GetProperty("clouds").GetString()!,
            w.GetProperty("usd_per_hour").GetString()!, w.GetProperty("total_usd").GetString()!))];

    private static async Task<JsonElement> BurnAsync(ReplayedServer server)
    {
        using var client = server.Client();
        var body = await client.GetStringAsync(new Uri("/api/v1/burn", UriKind.Relative), TestContext.Current.CancellationToken);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    [Fact]
    public async Task Once_as_json_gives_the_servers_burn_rows_sorted_by_rate()
    {
        await using var server = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(40));
        var burn = await BurnAsync(server);
        var expected = Rows(burn);
        Assert.True(expected.Count >= 3, "the replayed fleet burns in several workloads");
        using var cli = new CliHarness();

        var exit = await cli.RunAsync("top", "--server", server.Url.ToString(), "--once", "--format", "json", "--limit", "0");

        Assert.Equal(0, exit);
        var top = JsonDocument.Parse(cli.Output.ToString()).RootElement;
        var rows = Rows(top);
        Assert.Equal(expected.OrderByDescending(r => r.Rate).ThenByDescending(r => r.Cost).ThenBy(r => r.Workload, StringComparer.Ordinal), rows);
        Assert.Equal(burn.GetProperty("total_usd_per_hour").GetString(), top.GetProperty("total_usd_per_hour").GetString());
        Assert.Equal(burn.GetProperty("rated_usd").GetString(), top.GetProperty("rated_usd").GetString());
        Assert.Equal("rate", top.GetProperty("sort").GetString());
    }

    [Theory]
    [InlineData("total")]
    [InlineData("name")]
    [InlineData("team")]
    public async Task Sort_orders_the_same_rows_by_total_name_or_team_and_limit_keeps_the_first(string sort)
    {
        await using var server = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(40));
        var expected = Rows(await BurnAsync(server));
        using var all = new CliHarness();
        using var limited = new CliHarness();

        Assert.Equal(0, await all.RunAsync("top", "--server", server.Url.ToString(), "--once", "--format", "json", "--sort", sort, "--limit", "0"));
        Assert.Equal(0, await limited.RunAsync("top", "--server", server.Url.ToString(), "--once", "--format", "json", "--sort", sort, "--limit", "2"));

        var rows = Rows(JsonDocument.Parse(all.Output.ToString()).RootElement);
        Assert.Equal(expected.OrderBy(r => r.Workload, StringComparer.Ordinal), rows.OrderBy(r => r.Workload, StringComparer.Ordinal));
        for (var i = 1; i < rows.Count; i++)
        {
            var (a, b) = (rows[i - 1], rows[i]);
            var ordered = sort switch
            {
                "total" => a.Cost >= b.Cost,
                "name" => string.CompareOrdinal(a.Name, b.Name) <= 0,
                _ => string.CompareOrdinal(a.Team, b.Team) <= 0,
            };
            Assert.True(ordered, $"--sort {sort}: {a} comes before {b}");
        }
        Assert.Equal(rows.Take(2), Rows(JsonDocument.Parse(limited.Output.ToString()).RootElement));
    }

    [Fact]
    public async Task Once_as_a_table_shows_the_total_burn_and_the_top_workloads()
    {
        await using var server = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(40));
        var burn = await BurnAsync(server);
        var first = Rows(burn).OrderByDescending(r => r.Rate).First(r => r.Workload.Length > 0);
        using var cli = new CliHarness();

        Assert.Equal(0, await cli.RunAsync("top", "--server", server.Url.ToString(), "--once"));

        var text = cli.Output.ToString();
        var total = decimal.Parse(burn.GetProperty("total_usd_per_hour").GetString()!, CultureInfo.InvariantCulture);
        Assert.Contains(total.ToString("$#,##0.00", CultureInfo.InvariantCulture) + "/h", text, StringComparison.Ordinal);
        var line = Assert.Single(text.Split('\n'), l => l.Contains(first.Workload + " ", StringComparison.Ordinal));
        Assert.Contains(first.Rate.ToString("#,##0.00", CultureInfo.InvariantCulture), line, StringComparison.Ordinal);
        Assert.Contains(first.Team, line, StringComparison.Ordinal);
        Assert.Contains("sorted by rate", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_server_is_a_clear_error_naming_the_url_and_exit_code_1()
    {
        var url = $"http://127.0.0.1:{RealPeer.FreePort()}/"; // free: nothing listens there
        using var cli = new CliHarness();

        var exit = await cli.RunAsync("top", "--server", url, "--once");

        Assert.Equal(1, exit);
        var error = cli.Errors.ToString();
        Assert.StartsWith("error: cannot reach the server at " + url, error, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", error, StringComparison.Ordinal); // no stack trace
        Assert.Equal("", cli.Output.ToString());
    }

    [Fact]
    public async Task A_server_that_does_not_rate_is_an_error_with_its_reason()
    {
        await using var server = await RunningServer.StartAsync(new FakeCostStore());
        using var cli = new CliHarness();

        Assert.Equal(1, await cli.RunAsync("top", "--server", server.Address.ToString(), "--once"));

        Assert.Contains("503", cli.Errors.ToString(), StringComparison.Ordinal);
        Assert.Contains("no rating pipeline", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--sort", "cost", "--sort: 'cost' is not a sort")]
    [InlineData("--interval", "soon", "--interval: 'soon'")]
    [InlineData("--limit", "-1", "--limit")]
    [InlineData("--server", "localhost", "--server: 'localhost' is not an http(s) URL")]
    public async Task A_bad_option_value_is_a_usage_error_saying_which(string option, string value, string message)
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("top", "--once", option, value));

        Assert.Contains(message, cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Json_without_once_is_a_usage_error()
    {
        using var cli = new CliHarness();

        Assert.Equal(2, await cli.RunAsync("top", "--format", "json"));

        Assert.Contains("--format json needs --once", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_explains_every_option()
    {
        using var cli = new CliHarness();

        Assert.Equal(0, await cli.RunAsync("top", "--help"));

        var help = cli.Output.ToString();
        foreach (var option in new[] { "--server", "--interval", "--sort", "--limit", "--once", "--format" })
            Assert.Contains(option, help, StringComparison.Ordinal);
        Assert.Contains("http://127.0.0.1:9840", help, StringComparison.Ordinal);
        Assert.Contains("q quits", help, StringComparison.Ordinal);
    }
}
