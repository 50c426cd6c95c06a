using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Server;

/// <summary>
/// Debian's Prometheus scrapes <c>/metrics</c> of a server fed by the simulator, and PromQL gives back the same cost per
/// team as the page (what the Grafana dashboard relies on).
/// </summary>
public sealed class PrometheusScrapeTests : IAsyncDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("burnrate-prom-scrape-").FullName;
    private readonly StringBuilder _log = new();
    private System.Diagnostics.Process? _prometheus;

    [Fact]
    public async Task Prometheus_scrapes_the_cost_series_and_sums_them_by_team_as_the_page_does()
    {
        var binary = RealPeer.Require("prometheus", "prometheus");
        var ct = TestContext.Current.CancellationToken;
        await using var server = await ReplayedServer.StartAsync("baseline+s1", TimeSpan.FromMinutes(30));
        using var client = server.Client();
        var page = await CostMetricsTests.ScrapeAsync(client);
        var expected = page.Where(s => s.Name == "burnrate_cost_dollars_total")
            .GroupBy(s => s.Get("team")!).ToDictionary(g => g.Key, g => g.Sum(s => s.Value), StringComparer.Ordinal);
        Assert.NotEmpty(expected);

        var port = RealPeer.FreePort();
        var config = Path.Combine(_dir, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: burnrate
                static_configs:
                  - targets: ["{server.Url.Authority}"]
            """, ct);
        _prometheus = RealPeer.Start(binary,
            [$"--config.file={config}", $"--storage.tsdb.path={Path.Combine(_dir, "tsdb")}", $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"], _log);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var query = Uri.EscapeDataString("sum by (team) (burnrate_cost_dollars_total)");
        Dictionary<string, double> got = [];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60); // waiting for an external process to start and scrape
        while (got.Count < expected.Count)
        {
            Assert.True(DateTime.UtcNow < deadline, "Prometheus never returned the cost series: " + string.Join(", ", got) + "\n" + _log);
            await Task.Delay(500, ct);
            try
            {
                using var answer = JsonDocument.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/api/v1/query?query={query}", ct));
                got = answer.RootElement.GetProperty("data").GetProperty("result").EnumerateArray().ToDictionary(
                    r => r.GetProperty("metric").TryGetProperty("team", out var team) ? team.GetString()! : "",
                    r => double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture), StringComparer.Ordinal);
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
        }

        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), got.Keys.Order(StringComparer.Ordinal));
        foreach (var (team, dollars) in expected)
            Assert.Equal(dollars, got[team], 1e-6);
    }

    public ValueTask DisposeAsync()
    {
        RealPeer.Stop(_prometheus);
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // Prometheus may still be letting go of its files
        }
        return ValueTask.CompletedTask;
    }
}
