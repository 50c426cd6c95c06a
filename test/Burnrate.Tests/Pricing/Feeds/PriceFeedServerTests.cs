using System.Text.Json;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Rating;
using Burnrate.Server;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Pricing.Feeds;

/// <summary>
/// A failing feed keeps its last good prices in force, and says so on <c>/metrics</c> and <c>GET /api/v1/prices/feeds</c>:
/// the real server, the Azure feed against a local server answering with the captured Retail Prices response.
/// </summary>
public sealed class PriceFeedServerTests
{
    private const string Feed = "feed=\"azure-eastus\",kind=\"azure_retail\"";

    [Fact]
    public async Task A_failing_feed_keeps_the_last_good_price_for_rating_and_reports_the_error_in_metrics_and_the_API()
    {
        var ct = TestContext.Current.CancellationToken;
        var good = SpotTestData.Read("azure/standard_d2s_v3_eastus.json");
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => new PriceApiAnswer(200, good);
        var time = new FakeTimeProvider(At(12, 0));
        var catalog = BuiltInCatalog.Load();
        var book = catalog.ToPriceBook();
        var options = new PriceFeedOptions
        {
            Name = "azure-eastus",
            Kind = PriceFeedKind.AzureRetail,
            Endpoint = new Uri(api.Url, "api/retail/prices"),
            Regions = ["eastus"],
            InstanceTypes = ["Standard_D2s_v3"],
        };
        using var http = new HttpClient();
        using var feeds = new PriceFeeds([new PriceFeed(options, new AzureRetailPriceSource(options, http), book, time)], time);
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        using var pipeline = new CostPipeline(new RatingEngine(book, catalog.RateCard), store, new RatingOptions { Grace = TimeSpan.Zero });
        await using var app = BurnrateServer.Build(new BurnrateServerOptions
        {
            Listen = "127.0.0.1:0",
            Store = store,
            Time = time,
            ConfigureServices = s => s.AddSingleton(pipeline).AddSingleton(feeds),
        });
        await app.StartAsync(ct);
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

        Assert.Equal(1, await feeds.PollDueAsync(ct));
        pipeline.Apply([new NodeStarted(At(12, 0), new NodeSpec("vm-1", "azure", "eastus", "", "Standard_D2s_v3", CapacityType.Spot, 0, ""))]);
        var request = Assert.Single(api.Requests);
        Assert.Equal("/api/retail/prices", request.Path);
        Assert.Contains("api-version=2023-01-01-preview", request.Query, StringComparison.Ordinal);
        Assert.Contains("$filter=serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armRegionName eq 'eastus' and (armSkuName eq 'Standard_D2s_v3')", request.Query, StringComparison.Ordinal);

        // The API fails: first a 500, then a body that is not JSON.
        api.Answer = _ => new PriceApiAnswer(500, "{\"error\":{\"code\":\"InternalServerError\"}}");
        time.SetUtcNow(At(12, 1));
        Assert.Equal(1, await feeds.PollDueAsync(ct));
        var afterFirst = await FeedAsync(client, ct);
        Assert.Contains("HTTP 500", afterFirst.GetProperty("last_error").GetString(), StringComparison.Ordinal);
        api.Answer = _ => new PriceApiAnswer(200, "<html>down for maintenance</html>", "text/html");
        time.SetUtcNow(At(12, 2));
        Assert.Equal(1, await feeds.PollDueAsync(ct));
        time.SetUtcNow(At(12, 3));
        Assert.Equal(0, await feeds.PollDueAsync(ct)); // backing off: two failures in a row wait two intervals

        // Rating goes on at the last good spot price: $0.018816/h is $0.0003136 a minute.
        Assert.Equal(3, await pipeline.RateClosedMinutesAsync(At(12, 3), ct));
        var rows = await store.QueryCostsAsync(new CostQuery { From = At(12, 0), To = At(12, 3) }, ct);
        Assert.Equal(Money.FromDollars(3 * 0.0003136m), Assert.Single(rows).Cost);

        var feed = await FeedAsync(client, ct);
        Assert.False(feed.GetProperty("up").GetBoolean());
        Assert.Contains("not JSON", feed.GetProperty("last_error").GetString(), StringComparison.Ordinal);
        Assert.Equal("2026-11-02T12:00:00Z", feed.GetProperty("last_success_at").GetString());
        Assert.Equal("2026-11-02T12:02:00Z", feed.GetProperty("last_error_at").GetString());
        Assert.Equal("2026-11-02T12:04:00Z", feed.GetProperty("next_poll_at").GetString());
        Assert.Equal((2, 2, 3, 2), (feed.GetProperty("consecutive_failures").GetInt32(), feed.GetProperty("errors").GetInt32(),
            feed.GetProperty("polls").GetInt32(), feed.GetProperty("prices_held").GetInt32()));
        Assert.Equal("azure_retail", feed.GetProperty("kind").GetString());

        var metrics = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct);
        Assert.Contains($"burnrate_price_feed_up{{{Feed}}} 0\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"burnrate_price_feed_errors_total{{{Feed}}} 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"burnrate_price_feed_consecutive_failures{{{Feed}}} 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"burnrate_price_feed_prices{{{Feed}}} 2\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"burnrate_price_feed_last_success_timestamp_seconds{{{Feed}}} {At(12, 0).ToUnixTimeSeconds()}\n", metrics, StringComparison.Ordinal);

        // The API is back: the feed is up again.
        api.Answer = _ => new PriceApiAnswer(200, good);
        time.SetUtcNow(At(12, 4));
        Assert.Equal(1, await feeds.PollDueAsync(ct));
        metrics = await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct);
        Assert.Contains($"burnrate_price_feed_up{{{Feed}}} 1\n", metrics, StringComparison.Ordinal);
        Assert.Contains($"burnrate_price_feed_consecutive_failures{{{Feed}}} 0\n", metrics, StringComparison.Ordinal);
        Assert.Equal("2026-11-02T12:04:00Z", (await FeedAsync(client, ct)).GetProperty("last_success_at").GetString());
    }

    [Fact]
    public async Task A_server_without_feeds_lists_none_and_writes_no_feed_series()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        await using var app = BurnrateServer.Build(new BurnrateServerOptions { Listen = "127.0.0.1:0", Store = store });
        await app.StartAsync(ct);
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/api/v1/prices/feeds", UriKind.Relative), ct));
        Assert.Equal(0, document.RootElement.GetProperty("feeds").GetArrayLength());
        Assert.DoesNotContain("burnrate_price_feed_", await client.GetStringAsync(new Uri("/metrics", UriKind.Relative), ct), StringComparison.Ordinal);
        using var unknown = await client.GetAsync(new Uri("/api/v1/prices/feeds?name=x", UriKind.Relative), ct);
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, unknown.StatusCode);
    }

    /// <summary>A time on 2 November 2026: the captured response's Spot meter took effect on 1 June 2026.</summary>
    private static DateTimeOffset At(int hour, int minute) => new(2026, 11, 2, hour, minute, 0, TimeSpan.Zero);

    private static async Task<JsonElement> FeedAsync(HttpClient client, CancellationToken ct)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/api/v1/prices/feeds", UriKind.Relative), ct));
        return Assert.Single(document.RootElement.GetProperty("feeds").EnumerateArray().ToList()).Clone();
    }
}
