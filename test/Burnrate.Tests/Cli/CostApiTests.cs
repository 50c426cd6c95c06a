using System.Net;
using System.Text.Json;
using Burnrate.Server;
using Burnrate.Storage;

namespace Burnrate.Tests.Cli;

public sealed class CostApiTests
{
    private static FakeCostStore Ledger() => new(
        Some.Row(12.345678901m, idle: 1.5m, gpuHours: 2.5m, keys: ["ml", "llm"]),
        Some.Row(0.004m, idle: 0.004m, gpuHours: 0.001m, keys: ["infra", ""]));

    [Fact]
    public async Task Costs_endpoint_answers_rows_keyed_by_dimension_and_an_exact_total()
    {
        var store = Ledger();
        await using var server = await RunningServer.StartAsync(store);
        using var client = server.Client();

        using var response = await client.GetAsync(new Uri("/api/v1/costs?by=team,project&from=-1d&to=now", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        var root = document.RootElement;
        Assert.Equal("2025-06-14T12:00:00Z", root.GetProperty("from").GetString());
        Assert.Equal("2025-06-15T12:00:00Z", root.GetProperty("to").GetString());
        Assert.Equal(["team", "project"], root.GetProperty("by").EnumerateArray().Select(e => e.GetString()));
        var first = root.GetProperty("rows")[0];
        Assert.Equal("ml", first.GetProperty("keys").GetProperty("team").GetString());
        Assert.Equal("llm", first.GetProperty("keys").GetProperty("project").GetString());
        Assert.Equal("12.345678901", first.GetProperty("cost_usd").GetString());
        Assert.Equal("1.500000000", first.GetProperty("idle_usd").GetString());
        Assert.Equal(2.5m, first.GetProperty("gpu_hours").GetDecimal());
        Assert.Equal("12.349678901", root.GetProperty("total_usd").GetString());
        Assert.Equal([CostDimension.Team, CostDimension.Project], Assert.Single(store.Queries).By);
    }

    [Fact]
    public async Task Filters_and_step_in_the_query_string_reach_the_store()
    {
        var store = Ledger();
        await using var server = await RunningServer.StartAsync(store);
        using var client = server.Client();

        using var response = await client.GetAsync(
            new Uri("/api/v1/costs?by=gpu&from=2025-06-01T00:00:00Z&to=2025-06-02T00:00:00Z&step=1h&filter=team:ml%7Cinfra&filter=cloud:aws", UriKind.Relative),
            TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var query = Assert.Single(store.Queries);
        Assert.Equal(TimeSpan.FromHours(1), query.Step);
        Assert.Equal(["ml", "infra"], query.Filters[CostDimension.Team]);
        Assert.Equal(["aws"], query.Filters[CostDimension.Cloud]);
    }

    [Theory]
    [InlineData("by=team,colour", "colour")]
    [InlineData("by=team&from=yesterday", "from")]
    [InlineData("by=team&step=7s", "step")]
    [InlineData("by=team&filter=team", "filter")]
    [InlineData("by=team&from=-1h&to=-2h", "before")]
    [InlineData("by=team&colour=red", "colour")]
    public async Task Bad_query_is_a_400_problem_saying_what_was_wrong(string queryString, string mentioned)
    {
        var store = Ledger();
        await using var server = await RunningServer.StartAsync(store);
        using var client = server.Client();

        using var response = await client.GetAsync(new Uri("/api/v1/costs?" + queryString, UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        Assert.Equal(400, problem.RootElement.GetProperty("status").GetInt32());
        Assert.Contains(mentioned, problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Empty(store.Queries);
    }

    [Fact]
    public async Task Healthz_answers_ok()
    {
        await using var server = await RunningServer.StartAsync(Ledger());
        using var client = server.Client();

        var body = await client.GetStringAsync(new Uri("/healthz", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Equal("ok", body.Trim());
    }

    [Theory]
    [InlineData("0.0.0.0:9840")]
    [InlineData("192.168.1.10:9840")]
    [InlineData("[::]:9840")]
    public void Non_loopback_listen_address_is_refused_with_the_reason(string listen)
    {
        var e = Assert.Throws<ArgumentException>(() => BurnrateServer.Build(new BurnrateServerOptions { Listen = listen, Store = Ledger() }));

        Assert.Contains("loopback", e.Message, StringComparison.Ordinal);
        Assert.Contains(listen, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("127.0.0.1:9840")]
    [InlineData("localhost:0")]
    [InlineData("[::1]:9840")]
    public void Loopback_listen_addresses_are_accepted(string listen)
    {
        Assert.True(ListenAddress.TryParse(listen, out var endpoint, out var error), error);
        Assert.True(IPAddress.IsLoopback(endpoint.Address));
    }

    [Theory]
    [InlineData("csv")]
    [InlineData("json")]
    [InlineData("table")]
    public async Task Report_through_the_server_gives_the_same_output_as_from_the_ledger(string format)
    {
        var store = Ledger();
        await using var server = await RunningServer.StartAsync(store);
        using var direct = new CliHarness(store);
        using var remote = new CliHarness(store, withLedger: false);
        string[] args = ["report", "--by", "team,project", "--from", "2025-06-01T00:00:00Z", "--to", "2025-06-08T00:00:00Z", "--step", "1d", "--format", format];

        Assert.Equal(0, await direct.RunAsync(args));
        Assert.Equal(0, await remote.RunAsync([.. args, "--server", server.Address.ToString()]));

        Assert.Equal(direct.Output.ToString(), remote.Output.ToString());
        if (format != "table")
            Assert.Contains("12.345678901", remote.Output.ToString(), StringComparison.Ordinal);
        Assert.Equal(2, store.Queries.Count);
        Assert.Equal(store.Queries[0].From, store.Queries[1].From);
        Assert.Equal(store.Queries[0].To, store.Queries[1].To);
        Assert.Equal(store.Queries[0].Step, store.Queries[1].Step);
        Assert.Equal(store.Queries[0].By, store.Queries[1].By);
    }

    [Fact]
    public async Task Report_against_an_unreachable_server_exits_1()
    {
        using var cli = new CliHarness(withLedger: false);

        Assert.Equal(1, await cli.RunAsync("report", "--by", "team", "--server", "http://127.0.0.1:9/"));

        Assert.StartsWith("error: cannot reach the server", cli.Errors.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Report_passes_the_servers_problem_detail_through_and_exits_1()
    {
        await using var server = await RunningServer.StartAsync(Ledger());
        using var cli = new CliHarness(withLedger: false);

        // The CLI checks dimensions and times itself; the bucket limit is the server's own.
        Assert.Equal(1, await cli.RunAsync("report", "--by", "team", "--step", "1m", "--from", "2000-01-01", "--server", server.Address.ToString()));

        var error = cli.Errors.ToString();
        Assert.StartsWith("error: the server answered 400", error, StringComparison.Ordinal);
        Assert.Contains("buckets", error, StringComparison.Ordinal);
    }
}
