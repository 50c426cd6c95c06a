using System.Globalization;
using System.Text;
using System.Text.Json;
using Burnrate.Configuration;
using Burnrate.Protocols.Exposition;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;

namespace Burnrate.Tests.Server;

/// <summary>
/// The cost series on <c>GET /metrics</c>, scraped from a server fed by the simulator and read back with Burnrate's own
/// exposition parser: they add up to what <c>/api/v1/burn</c> and the ledger say.
/// </summary>
public sealed class CostMetricsTests
{
    // Prometheus values are floats; the page prints exact nine-decimal dollars, so sums agree far inside a micro-dollar.
    private const double Tolerance = 1e-6;

    internal static async Task<IReadOnlyList<MetricSample>> ScrapeAsync(HttpClient client)
    {
        var page = await client.GetByteArrayAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);
        var result = new ExpositionParser(strict: true).Parse(page, 0);
        Assert.True(result.Errors.Count == 0, "the page parses: " + string.Join("; ", result.Errors.Select(e => e.Message)));
        return result.Samples;
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient client, string path)
    {
        var body = await client.GetStringAsync(new Uri(path, UriKind.Relative), TestContext.Current.CancellationToken);
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    private static decimal Dollars(JsonElement value) => decimal.Parse(value.GetString()!, CultureInfo.InvariantCulture);

    private static Dictionary<string, double> SumBy(IReadOnlyList<MetricSample> samples, string name, string label) =>
        samples.Where(s => s.Name == name)
            .GroupBy(s => s.Get(label) ?? "")
            .ToDictionary(g => g.Key, g => g.Sum(s => s.Value), StringComparer.Ordinal);

    private static string LedgerQuery(ReplayedServer server, string by) =>
        $"/api/v1/costs?by={by}&from={Uri.EscapeDataString((ReplayedServer.Epoch - TimeSpan.FromDays(1)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))}" +
        $"&to={Uri.EscapeDataString((server.End + TimeSpan.FromDays(1)).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture))}";

    [Fact]
    public async Task Cost_series_by_team_and_cloud_add_up_to_the_burn_api_and_the_ledger()
    {
        await using var server = await ReplayedServer.StartAsync("baseline+s1+s8", TimeSpan.FromMinutes(45));
        using var client = server.Client();

        var samples = await ScrapeAsync(client);
        var burn = await GetJsonAsync(client, "/api/v1/burn");
        var ledger = await GetJsonAsync(client, LedgerQuery(server, "team"));

        var totals = samples.Where(s => s.Name == "burnrate_cost_dollars_total").ToList();
        Assert.True(totals.Count >= 2, "several team/cloud series");
        Assert.All(totals, s => Assert.Equal(["__name__", "cloud", "team"], s.Labels.Select(l => l.Name).Order(StringComparer.Ordinal)));

        // Everything rated: the counters' sum is the burn API's rated_usd; per cloud, its clouds[].total_usd.
        Assert.Equal((double)Dollars(burn.GetProperty("rated_usd")), totals.Sum(s => s.Value), Tolerance);
        var byCloud = SumBy(samples, "burnrate_cost_dollars_total", "cloud");
        var clouds = burn.GetProperty("clouds").EnumerateArray().ToList();
        Assert.Equal(clouds.Select(c => c.GetProperty("cloud").GetString()!).Order(StringComparer.Ordinal), byCloud.Keys.Order(StringComparer.Ordinal));
        foreach (var cloud in clouds)
            Assert.Equal((double)Dollars(cloud.GetProperty("total_usd")), byCloud[cloud.GetProperty("cloud").GetString()!], Tolerance);

        // Per team: the ledger's cost and idle cost (the same rows, grouped by team).
        var byTeam = SumBy(samples, "burnrate_cost_dollars_total", "team");
        var idleByTeam = SumBy(samples, "burnrate_idle_cost_dollars_total", "team");
        var rows = ledger.GetProperty("rows").EnumerateArray().Where(r => Dollars(r.GetProperty("cost_usd")) != 0m).ToList();
        Assert.Equal(rows.Count, byTeam.Count(t => t.Value != 0));
        foreach (var row in rows)
        {
            var team = row.GetProperty("keys").GetProperty("team").GetString()!;
            Assert.Equal((double)Dollars(row.GetProperty("cost_usd")), byTeam[team], Tolerance);
            Assert.Equal((double)Dollars(row.GetProperty("idle_usd")), idleByTeam.GetValueOrDefault(team), Tolerance);
        }
        Assert.True(idleByTeam.Values.Sum() > 0, "the baseline fleet has idle capacity");

        // The rate now: in total the burn API's total_usd_per_hour; per team, less idle, its workloads' rates.
        var rates = SumBy(samples, "burnrate_cost_rate_dollars_per_hour", "team");
        var idleRates = SumBy(samples, "burnrate_idle_cost_rate_dollars_per_hour", "team");
        Assert.Equal((double)Dollars(burn.GetProperty("total_usd_per_hour")), rates.Values.Sum(), Tolerance);
        var workloadRates = burn.GetProperty("workloads").EnumerateArray()
            .Where(w => w.GetProperty("workload").GetString()!.Length > 0)
            .GroupBy(w => w.GetProperty("team").GetString()!)
            .ToDictionary(g => g.Key, g => g.Sum(w => Dollars(w.GetProperty("usd_per_hour"))));
        Assert.NotEmpty(workloadRates);
        foreach (var (team, rate) in rates)
            Assert.Equal((double)workloadRates.GetValueOrDefault(team), rate - idleRates.GetValueOrDefault(team), Tolerance);
        Assert.Equal(0, samples.Single(s => s.Name == "burnrate_cost_series_folded_label_sets").Value);
    }

    [Fact]
    public async Task Over_max_series_the_rest_is_folded_into_other_and_counted()
    {
        var config = BurnrateConfig.Parse("metrics:\n  cost_labels: [team, project, cloud]\n  max_series: 2\n");
        await using var server = await ReplayedServer.StartAsync("baseline+s1+s8", TimeSpan.FromMinutes(45), config);
        using var client = server.Client();

        var samples = await ScrapeAsync(client);
        var burn = await GetJsonAsync(client, "/api/v1/burn");
        var ledger = await GetJsonAsync(client, LedgerQuery(server, "team,project,cloud"));

        static string Key(string team, string project, string cloud) => team + "/" + project + "/" + cloud;
        var totals = samples.Where(s => s.Name == "burnrate_cost_dollars_total")
            .ToDictionary(s => Key(s.Get("team")!, s.Get("project")!, s.Get("cloud")!), s => s.Value, StringComparer.Ordinal);
        var rows = ledger.GetProperty("rows").EnumerateArray()
            .Where(r => Dollars(r.GetProperty("cost_usd")) != 0m)
            .ToDictionary(r => Key(r.GetProperty("keys").GetProperty("team").GetString()!, r.GetProperty("keys").GetProperty("project").GetString()!, r.GetProperty("keys").GetProperty("cloud").GetString()!),
                r => Dollars(r.GetProperty("cost_usd")), StringComparer.Ordinal);
        Assert.True(rows.Count > 3, "the fleet spends under more than three team/project/cloud label sets");

        Assert.Equal(3, totals.Count); // two owned series and __other__
        var other = Key("__other__", "__other__", "__other__");
        Assert.Contains(other, totals.Keys);
        var owned = totals.Keys.Where(k => k != other).ToList();
        foreach (var key in owned)
            Assert.Equal((double)rows.GetValueOrDefault(key), totals[key], Tolerance);
        Assert.Equal((double)rows.Where(r => !owned.Contains(r.Key)).Sum(r => r.Value), totals[other], Tolerance);
        Assert.Equal((double)Dollars(burn.GetProperty("rated_usd")), totals.Values.Sum(), Tolerance);
        var folded = samples.Single(s => s.Name == "burnrate_cost_series_folded_label_sets").Value;
        Assert.True(folded >= rows.Count - 2, $"{folded} label sets folded; the ledger has {rows.Count}");
        foreach (var family in new[] { "burnrate_cost_rate_dollars_per_hour", "burnrate_idle_cost_dollars_total", "burnrate_idle_cost_rate_dollars_per_hour" })
            Assert.Equal(3, samples.Count(s => s.Name == family));
    }

    [Fact]
    public async Task The_page_declares_each_cost_family_once_with_its_type()
    {
        await using var server = await ReplayedServer.StartAsync("baseline", TimeSpan.FromMinutes(10));
        using var client = server.Client();

        var page = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);

        Assert.Single(page.Split('\n'), l => l == "# TYPE burnrate_cost_dollars_total counter");
        Assert.Single(page.Split('\n'), l => l == "# TYPE burnrate_idle_cost_dollars_total counter");
        Assert.Single(page.Split('\n'), l => l == "# TYPE burnrate_cost_rate_dollars_per_hour gauge");
        Assert.Single(page.Split('\n'), l => l == "# TYPE burnrate_idle_cost_rate_dollars_per_hour gauge");
        Assert.DoesNotContain("E+", page, StringComparison.Ordinal); // plain decimals, never exponents of rounded floats
    }
}
