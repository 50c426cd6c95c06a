using Burnrate.Cli;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;

namespace Burnrate.Tests.Cli;

/// <summary>
/// <c>burnrate demo</c> end to end in-process: the real simulator, price catalog, rating engine and DuckDB store.
/// </summary>
public sealed class DemoCommandTests : IDisposable
{
    private static readonly string[] s_clouds = ["aws", "gcp", "azure", "lambda", "nebius", "runpod", "coreweave"];
    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-demo-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();

    private CliServices Services() => Composition.CreateServices() is var real
        ? new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = _out, Error = _error }
        : throw new InvalidOperationException();

    [Fact]
    public async Task Demo_ends_by_itself_and_every_cloud_of_the_fleet_costs_something_plausible()
    {
        // One wall second at 3600× is an hour of fleet time.
        var exit = await BurnrateCli.InvokeAsync(Services(), ["demo", "--duration", "1s", "--speed", "3600", "--data", _data, "--listen", "127.0.0.1:0"], TestContext.Current.CancellationToken);

        Assert.True(exit == 0, _error.ToString() + _out.ToString());
        Assert.Contains("Dashboard: http://127.0.0.1:", _out.ToString(), StringComparison.Ordinal);

        await using var store = await DuckDbCostStore.OpenAsync(Path.Combine(_data, CliServices.LedgerFileName), ct: TestContext.Current.CancellationToken);
        var span = await store.GetLedgerSpanAsync(TestContext.Current.CancellationToken);
        Assert.NotNull(span);
        var byCloud = await store.QueryCostsAsync(new CostQuery { From = span.Value.First, To = span.Value.Last.AddMinutes(1), By = [CostDimension.Cloud] }, TestContext.Current.CancellationToken);
        foreach (var cloud in s_clouds)
        {
            var row = byCloud.SingleOrDefault(r => r.Keys[0] == cloud);
            Assert.True(row is not null, $"no cost for {cloud}: {string.Join(", ", byCloud.Select(r => r.Keys[0]))}");
            // An hour of a fleet of 8-GPU nodes: more than a dollar, less than the $10,000 a runaway would cost.
            Assert.InRange(row.Cost.Dollars, 1m, 10_000m);
        }
        // The ledger ends at the demo's end: no minute past the wall clock's now is billed.
        Assert.True(span.Value.Last <= DateTimeOffset.UtcNow, $"ledger runs to {span.Value.Last:O}");
    }

    [Fact]
    public async Task The_demo_prints_the_runaway_alert_of_s1_and_delivers_it_to_a_configured_webhook()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var hook = await Support.HookReceiver.StartAsync(ct);
        var config = Path.Combine(_data, "burnrate.yaml");
        Directory.CreateDirectory(_data);
        await File.WriteAllTextAsync(config, $"notify:\n  - webhook: {hook.Url}/hook\n", ct);

        var exit = await BurnrateCli.InvokeAsync(Services(), ["demo", "--scenario", "s1", "--duration", "4s", "--speed", "3600", "--config", config, "--data", _data, "--listen", "127.0.0.1:0"], ct);

        Assert.Equal(0, exit);
        Assert.Contains("FIRING   runaway-spend: workload skypilot:managed-4711", _out.ToString(), StringComparison.Ordinal);
        for (var i = 0; i < 200 && !hook.Requests.Any(r => r.Body.ToString().Contains("\"runaway-spend\"", StringComparison.Ordinal)); i++)
            await Task.Delay(50, ct);
        var runaway = hook.Requests.SelectMany(r => r.Body.GetProperty("alerts").EnumerateArray())
            .Where(a => a.GetProperty("rule").GetString() == "runaway-spend").ToList();
        Assert.True(runaway.Any(a => a.GetProperty("status").GetString() == "firing"), "no firing runaway-spend delivered: " + string.Join("\n", hook.Requests.Select(r => r.Body.ToString())));
        Assert.All(runaway, a => Assert.Equal("skypilot:managed-4711", a.GetProperty("labels").GetProperty("workload").GetString()));
    }

    [Fact]
    public async Task Report_reads_the_demo_ledger_afterwards()
    {
        var services = Services();
        Assert.Equal(0, await BurnrateCli.InvokeAsync(services, ["demo", "--duration", "1s", "--speed", "1800", "--scenario", "s2", "--data", _data, "--listen", "127.0.0.1:0"], TestContext.Current.CancellationToken));
        _out.GetStringBuilder().Clear();

        var exit = await BurnrateCli.InvokeAsync(services, ["report", "--by", "team,cloud", "--format", "csv", "--data", _data], TestContext.Current.CancellationToken);

        Assert.True(exit == 0, _error.ToString());
        var lines = _out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("team,cloud,cost_usd", lines[0], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Contains(",aws,", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_configured_duckdb_file_is_where_demo_writes_and_report_reads()
    {
        var ledger = Path.Combine(_data, "elsewhere", "fleet.duckdb");
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, $"storage:\n  duckdb: {ledger}\n", TestContext.Current.CancellationToken);
        var services = Services();

        Assert.Equal(0, await BurnrateCli.InvokeAsync(services, ["demo", "--duration", "1s", "--speed", "600", "--scenario", "s13", "--config", config, "--data", _data, "--listen", "127.0.0.1:0"], TestContext.Current.CancellationToken));
        Assert.True(File.Exists(ledger));
        Assert.False(File.Exists(Path.Combine(_data, CliServices.LedgerFileName)));
        _out.GetStringBuilder().Clear();

        var exit = await BurnrateCli.InvokeAsync(services, ["report", "--by", "team", "--format", "csv", "--config", config, "--data", _data], TestContext.Current.CancellationToken);

        Assert.True(exit == 0, _error.ToString());
        Assert.Contains(",", _out.ToString().Split('\n')[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_scenario_is_a_usage_error_listing_the_known_ones()
    {
        var exit = await BurnrateCli.InvokeAsync(Services(), ["demo", "--scenario", "s99", "--data", _data], TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Contains("s99", _error.ToString(), StringComparison.Ordinal);
        Assert.Contains("s13", _error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_bad_duration_is_a_usage_error()
    {
        var exit = await BurnrateCli.InvokeAsync(Services(), ["demo", "--duration", "forever", "--data", _data], TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Contains("--duration", _error.ToString(), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _out.Dispose();
        _error.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
