using System.Text.RegularExpressions;
using Burnrate.Cli;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Tests.Storage;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Cli;

public sealed partial class ServeCommandTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("burnrate-serve-").FullName;
    private readonly StringWriter _out = new();
    private readonly StringWriter _error = new();

    private CliServices Services(TimeProvider? time = null) => Composition.CreateServices() is var real
        ? new CliServices { OpenStore = real.OpenStore, LoadPriceBook = real.LoadPriceBook, Out = TextWriter.Synchronized(_out), Error = _error, Time = time ?? TimeProvider.System }
        : throw new InvalidOperationException();

    [Fact]
    public async Task Serve_answers_the_cost_and_burn_apis_over_the_ledger_until_stopped()
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        var run = BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "127.0.0.1:0", "--data", _data], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(url + "/healthz", TestContext.Current.CancellationToken));
        var costs = await http.GetAsync(url + "/api/v1/costs?by=team", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, costs.StatusCode);
        var burn = await http.GetAsync(url + "/api/v1/burn", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.OK, burn.StatusCode); // serve rates live input now

        await stop.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public async Task Serve_refuses_a_non_loopback_address_without_api_keys()
    {
        var exit = await BurnrateCli.InvokeAsync(Services(), ["serve", "--listen", "0.0.0.0:9840", "--data", _data], TestContext.Current.CancellationToken);

        Assert.Equal(2, exit);
        Assert.Contains("loopback", _error.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Serve_applies_storage_retention_at_start_and_every_hour_and_reports_keep_their_totals()
    {
        var ct = TestContext.Current.CancellationToken;
        var now = new DateTimeOffset(2025, 6, 1, 12, 30, 0, TimeSpan.Zero);
        var time = new FakeTimeProvider(now);
        var old = now.AddDays(-40);
        List<Burnrate.Rating.CostLine> lines =
        [
            .. Enumerable.Range(0, 10).Select(i => SomeLines.Line(old.AddMinutes(i * 7), costNanos: 1_000_000_007 + i, team: "a")),
            .. Enumerable.Range(0, 5).Select(i => SomeLines.Line(now.AddDays(-2).AddMinutes(i), costNanos: 3_000_000_001, team: "b")),
        ];
        var whole = new CostQuery { From = new DateTimeOffset(old.UtcDateTime.Date.AddDays(-1), TimeSpan.Zero), To = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero), By = [CostDimension.Team] };
        IReadOnlyList<CostReportRow> before;
        await using (var store = await DuckDbCostStore.OpenAsync(CliServices.LedgerPath(_data), ct: ct))
        {
            await store.WriteAsync(lines, ct);
            before = await store.QueryCostsAsync(whole, ct);
        }
        var config = Path.Combine(_data, "burnrate.yaml");
        await File.WriteAllTextAsync(config, "storage:\n  retention:\n    minutes: 30d\n", ct);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = BurnrateCli.InvokeAsync(Services(time), ["serve", "--listen", "127.0.0.1:0", "--data", _data, "--config", config], stop.Token);
        string? url = null;
        for (var i = 0; i < 600 && url is null && !run.IsCompleted; i++)
        {
            url = UrlPattern().Match(_out.ToString()) is { Success: true } m ? m.Value : null;
            await Task.Delay(50, ct);
        }
        Assert.True(url is not null, "serve never said where it listens: " + _out + _error);
        using var http = new HttpClient();
        var metrics = "";
        for (var i = 0; i < 600 && !metrics.Contains("burnrate_retention_runs_total 1\n", StringComparison.Ordinal); i++)
        {
            await Task.Delay(50, ct);
            metrics = await http.GetStringAsync(url + "/metrics", ct);
        }
        Assert.Contains("burnrate_retention_rows_dropped_total{table=\"cost_minutes\"} 10\n", metrics, StringComparison.Ordinal);
        Assert.Contains("burnrate_retention_failures_total 0\n", metrics, StringComparison.Ordinal);
        var horizon = new DateTimeOffset(now.AddDays(-30).UtcDateTime.Date.AddHours(12), TimeSpan.Zero).ToUnixTimeSeconds();
        Assert.Contains($"burnrate_retention_horizon_timestamp_seconds{{resolution=\"minute\"}} {horizon}\n", metrics, StringComparison.Ordinal);

        // An hour later on serve's clock it runs again (and finds nothing more to drop).
        for (var i = 0; i < 600 && !RunsAtLeast(metrics, 2); i++)
        {
            time.Advance(TimeSpan.FromHours(1));
            await Task.Delay(50, ct);
            metrics = await http.GetStringAsync(url + "/metrics", ct);
        }
        Assert.True(RunsAtLeast(metrics, 2), metrics);
        Assert.Contains("burnrate_retention_rows_dropped_total{table=\"cost_minutes\"} 10\n", metrics, StringComparison.Ordinal);
        await stop.CancelAsync();
        Assert.Equal(0, await run);

        await using var reopened = await DuckDbCostStore.OpenAsync(CliServices.LedgerPath(_data), ct: ct);
        Assert.Empty(await reopened.GetLinesAsync(old.AddDays(-1), now.AddDays(-30), ct));
        Assert.Equal(5, (await reopened.GetLinesAsync(now.AddDays(-30), now, ct)).Count);
        Assert.Equal(SomeLines.Canonical(before), SomeLines.Canonical(await reopened.QueryCostsAsync(whole, ct)));
        Assert.NotNull(reopened.Held.Minutes); // learned from the file: report on it plans with the rollups too
    }

    private static bool RunsAtLeast(string metrics, int runs) =>
        RunsPattern().Match(metrics) is { Success: true } m && int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= runs;

    [GeneratedRegex(@"burnrate_retention_runs_total (\d+)")]
    private static partial Regex RunsPattern();

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+")]
    private static partial Regex UrlPattern();

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
