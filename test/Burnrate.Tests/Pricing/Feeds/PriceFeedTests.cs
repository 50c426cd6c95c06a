using System.Text.Json.Nodes;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Pricing.Feeds;

/// <summary>The Azure, GCP and SkyPilot feeds end to end into the price book, and the polling schedule.</summary>
public sealed class PriceFeedTests
{
    [Fact]
    public async Task Azure_pages_are_followed_by_NextPageLink_until_it_is_null()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        var full = JsonNode.Parse(SpotTestData.Read("azure/eastus_standard_d2s_v3_nofilter_preview.json"))!.AsObject();
        var items = full["Items"]!.AsArray().Select(i => i!.DeepClone()).ToList();
        JsonObject Page(IEnumerable<JsonNode> page, string? next) => new()
        {
            ["BillingCurrency"] = "USD",
            ["CustomerEntityId"] = "Default",
            ["CustomerEntityType"] = "Retail",
            ["Items"] = new JsonArray([.. page]),
            ["NextPageLink"] = next,
            ["Count"] = page.Count(),
        };
        var second = new Uri(api.Url, "api/retail/prices?api-version=2023-01-01-preview&$skip=4").ToString();
        api.Answer = r => new PriceApiAnswer(200, (r.Query.Contains("$skip=4", StringComparison.Ordinal)
            ? Page(items.Skip(4).Select(i => i.DeepClone()), null)
            : Page(items.Take(4).Select(i => i.DeepClone()), second)).ToJsonString());
        var options = new PriceFeedOptions { Name = "azure", Kind = PriceFeedKind.AzureRetail, Endpoint = new Uri(api.Url, "api/retail/prices"), Regions = ["eastus"] };
        using var http = new HttpClient();
        var book = new PriceBook();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero));
        using var feed = new PriceFeed(options, new AzureRetailPriceSource(options, http), book, time);

        Assert.True(await feed.PollAsync(ct));

        Assert.Equal(2, api.Requests.Count);
        Assert.Equal(0.096m, book.Find("azure", "eastus", "", "Standard_D2s_v3", CapacityType.OnDemand, time.GetUtcNow())!.PricePerHour);
        Assert.Equal(0.018816m, book.Find("azure", "eastus", "", "Standard_D2s_v3", CapacityType.Spot, time.GetUtcNow())!.PricePerHour);
        // The savings-plan rates (on the page after the first) are held by the feed.
        Assert.Equal([0.04512m, 0.06624m], feed.SavingsPlans.Select(p => p.PricePerHour).Order());
        Assert.Equal(2, feed.Status.SavingsPlanPrices);
    }

    [Fact]
    public async Task An_Azure_next_page_on_another_host_is_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => new PriceApiAnswer(200, """{"Items":[],"NextPageLink":"https://elsewhere.example/api/retail/prices?$skip=100"}""");
        var options = new PriceFeedOptions { Name = "azure", Kind = PriceFeedKind.AzureRetail, Endpoint = api.Url, Regions = ["eastus"] };
        using var http = new HttpClient();
        using var feed = new PriceFeed(options, new AzureRetailPriceSource(options, http), new PriceBook(), new FakeTimeProvider(Support.Some.Noon));

        Assert.False(await feed.PollAsync(ct));

        Assert.Contains("NextPageLink", feed.Status.LastError, StringComparison.Ordinal);
        Assert.Single(api.Requests);
    }

    private const string GcpPage = """
        {"skus":[{"name":"services/6F81-5844-456A/skus/039F-D0DA-4055","skuId":"039F-D0DA-4055",
         "description":"Nvidia Tesla A100 GPU running in Americas",
         "category":{"serviceDisplayName":"Compute Engine","resourceFamily":"Compute","resourceGroup":"GPU","usageType":"OnDemand"},
         "serviceRegions":["us-central1","us-east1","us-west1"],
         "pricingInfo":[{"effectiveTime":"2026-03-02T11:00:00Z","currencyConversionRate":1,
           "pricingExpression":{"usageUnit":"h","usageUnitDescription":"hour","baseUnit":"s","displayQuantity":1,
             "tieredRates":[{"startUsageAmount":0,"unitPrice":{"currencyCode":"USD","units":"2","nanos":PRICE_NANOS}}]}}],
         "serviceProviderName":"Google"}],"nextPageToken":"NEXT"}
        """;

    [Fact]
    public async Task A_GCP_GPU_SKU_reprices_the_GPU_part_of_the_catalogs_instances_with_that_GPU_exactly()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = r => new PriceApiAnswer(200, r.Query.Contains("pageToken=p2", StringComparison.Ordinal)
            ? """{"skus":[],"nextPageToken":""}"""
            : GcpPage.Replace("PRICE_NANOS", "933908001", StringComparison.Ordinal).Replace("NEXT", "p2", StringComparison.Ordinal));
        var options = new PriceFeedOptions
        {
            Name = "gcp",
            Kind = PriceFeedKind.GcpBilling,
            Endpoint = api.Url,
            Regions = ["us-central1"],
            ApiKey = "secret-key-123",
        };
        using var http = new HttpClient();
        var book = BuiltInCatalog.Load().ToPriceBook();
        var before = book.Find("gcp", "us-central1", "", "a2-highgpu-8g", CapacityType.OnDemand, Support.Some.Noon)!;
        using var feed = new PriceFeed(options, new GcpBillingPriceSource(options, http), book, new FakeTimeProvider(Support.Some.Noon));

        Assert.True(await feed.PollAsync(ct));

        var requests = api.Requests.ToList();
        Assert.Equal(2, requests.Count);
        Assert.Equal("/v1/services/6F81-5844-456A/skus", requests[0].Path);
        Assert.Contains("key=secret-key-123", requests[0].Query, StringComparison.Ordinal);
        Assert.Contains("pageToken=p2", requests[1].Query, StringComparison.Ordinal);
        var after = book.Find("gcp", "us-central1", "", "a2-highgpu-8g", CapacityType.OnDemand, Support.Some.Noon)!;
        // Machine part kept, each of the 8 GPUs at $2.933908001: the nano-dollar survives.
        var machine = before.PricePerHour - (8 * before.GpuPricePerHour);
        Assert.Equal(2.933908001m, after.GpuPricePerHour);
        Assert.Equal(machine + (8 * 2.933908001m), after.PricePerHour);
        Assert.Equal(new DateTimeOffset(2026, 3, 2, 11, 0, 0, TimeSpan.Zero), after.EffectiveFrom);
        Assert.Equal("feed:gcp:039F-D0DA-4055", after.Source);
        Assert.Equal(2.933908001m, book.Find("gcp", "us-central1", "", "a2-highgpu-1g", CapacityType.OnDemand, Support.Some.Noon)!.GpuPricePerHour);
        // Spot instances are not repriced by an on-demand SKU.
        Assert.NotEqual(2.933908001m, book.Find("gcp", "us-central1", "", "a2-highgpu-8g", CapacityType.Spot, Support.Some.Noon)!.GpuPricePerHour);
    }

    [Fact]
    public async Task A_GCP_error_never_shows_the_API_key()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => new PriceApiAnswer(403, """{"error":{"code":403,"message":"API key not valid"}}""");
        var options = new PriceFeedOptions { Name = "gcp", Kind = PriceFeedKind.GcpBilling, Endpoint = api.Url, ApiKey = "secret-key-123" };
        using var http = new HttpClient();
        using var feed = new PriceFeed(options, new GcpBillingPriceSource(options, http), new PriceBook(), new FakeTimeProvider(Support.Some.Noon));

        Assert.False(await feed.PollAsync(ct));

        Assert.Contains("HTTP 403", feed.Status.LastError, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-key-123", feed.Status.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_SkyPilot_catalog_is_read_again_only_when_the_file_changes_and_its_new_prices_date_from_the_change()
    {
        var ct = TestContext.Current.CancellationToken;
        var source = PricingTestPaths.SkyPilotFile("v9/nebius/vms.csv");
        var dir = Directory.CreateTempSubdirectory("burnrate-feed-");
        try
        {
            var file = Path.Combine(dir.FullName, "nebius", "vms.csv");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            File.Copy(source, file);
            File.SetLastWriteTimeUtc(file, Support.Some.At(11, 0).UtcDateTime);
            var options = new PriceFeedOptions { Name = "sky", Kind = PriceFeedKind.SkyPilot, Paths = [dir.FullName], InstanceTypes = ["gpu-h100-sxm_8gpu-128vcpu-1600gb"] };
            var book = new PriceBook();
            var time = new FakeTimeProvider(Support.Some.Noon);
            using var feed = new PriceFeed(options, new SkyPilotCatalogSource(options), book, time);

            Assert.True(await feed.PollAsync(ct));
            var first = book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, Support.Some.Noon)!;
            Assert.Equal((23.60m, 8, Support.Some.At(11, 0)), (first.PricePerHour, first.GpuCount, first.EffectiveFrom));
            Assert.StartsWith("feed:sky:skypilot:", first.Source, StringComparison.Ordinal);
            Assert.Equal(10.00m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.Spot, Support.Some.Noon)!.PricePerHour);
            var changes = feed.Status.BookChanges;

            time.Advance(TimeSpan.FromMinutes(1));
            Assert.True(await feed.PollAsync(ct));
            Assert.Equal(changes, feed.Status.BookChanges); // untouched file: not read again

            File.WriteAllText(file, File.ReadAllText(file).Replace(",23.60,eu-north1,", ",21.80,eu-north1,", StringComparison.Ordinal));
            File.SetLastWriteTimeUtc(file, Support.Some.At(12, 30).UtcDateTime);
            time.SetUtcNow(Support.Some.At(12, 31));
            Assert.True(await feed.PollAsync(ct));

            Assert.Equal(changes + 1, feed.Status.BookChanges); // only the price that moved
            Assert.Equal(23.60m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, Support.Some.At(12, 29))!.PricePerHour);
            Assert.Equal(21.80m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, Support.Some.At(12, 30))!.PricePerHour);

            File.Delete(file);
            time.Advance(TimeSpan.FromMinutes(1));
            Assert.True(await feed.PollAsync(ct)); // the directory is there, with no catalog in it: no prices, and none taken away
            Assert.Equal(21.80m, book.Find("nebius", "eu-north1", "", "gpu-h100-sxm_8gpu-128vcpu-1600gb", CapacityType.OnDemand, time.GetUtcNow())!.PricePerHour);
            dir.Delete(recursive: true);
            time.Advance(TimeSpan.FromMinutes(1));
            Assert.False(await feed.PollAsync(ct));
            Assert.Contains("no file or directory", feed.Status.LastError, StringComparison.Ordinal);
        }
        finally
        {
            if (dir.Exists)
                dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task A_catalog_entry_dated_after_the_APIs_date_does_not_hide_the_feed_price_from_the_poll_on()
    {
        var ct = TestContext.Current.CancellationToken;
        // The built-in catalog dates its AWS prices 2025-01-01; the feed's price says it took effect in 2024.
        var book = BuiltInCatalog.Load().ToPriceBook();
        var time = new FakeTimeProvider(Support.Some.Noon);
        var stale = new DateTimeOffset(2024, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var options = new PriceFeedOptions { Name = "fixed", Kind = PriceFeedKind.AzureRetail, Regions = ["x"] };
        using var feed = new PriceFeed(options, new FixedSource(new PriceQuote("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, 50m, stale)), book, time);

        Assert.True(await feed.PollAsync(ct));

        Assert.Equal(55.04m, book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, Support.Some.Noon.AddTicks(-1))!.PricePerHour);
        var now = book.Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.OnDemand, Support.Some.Noon)!;
        Assert.Equal((50m, Support.Some.Noon), (now.PricePerHour, now.EffectiveFrom));
    }

    [Fact]
    public async Task The_loop_polls_at_start_then_every_interval_and_backs_off_doubling_after_failures()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(Support.Some.Noon);
        var source = new ScriptedSource();
        var options = new PriceFeedOptions { Name = "s", Kind = PriceFeedKind.AwsSpot, Interval = TimeSpan.FromSeconds(60) };
        using var feeds = new PriceFeeds([new PriceFeed(options, source, new PriceBook(), time)], time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var loop = feeds.RunAsync(stop.Token);

        Assert.Equal(Support.Some.Noon, await source.NextCallAsync(ct)); // at start
        source.Fail = true;
        await AdvanceUntilWaitingAsync(time, feeds, Support.Some.Noon.AddSeconds(60));
        Assert.Equal(Support.Some.Noon.AddSeconds(60), await source.NextCallAsync(ct)); // fails: retry after 1 interval
        await AdvanceUntilWaitingAsync(time, feeds, Support.Some.Noon.AddSeconds(120));
        Assert.Equal(Support.Some.Noon.AddSeconds(120), await source.NextCallAsync(ct)); // fails again: retry after 2
        source.Fail = false;
        await AdvanceUntilWaitingAsync(time, feeds, Support.Some.Noon.AddSeconds(240));
        Assert.Equal(Support.Some.Noon.AddSeconds(240), await source.NextCallAsync(ct)); // succeeds: back to 1 interval
        await AdvanceUntilWaitingAsync(time, feeds, Support.Some.Noon.AddSeconds(300));
        Assert.Equal(Support.Some.Noon.AddSeconds(300), await source.NextCallAsync(ct));

        await stop.CancelAsync();
        await loop;
        Assert.Equal((5L, 2L, true), (feeds.Status[0].Polls, feeds.Status[0].Errors, feeds.Status[0].Up));
    }

    /// <summary>Waits until the feed has recorded its last poll (next poll after now), then moves the clock to <paramref name="to"/>.</summary>
    private static async Task AdvanceUntilWaitingAsync(FakeTimeProvider time, PriceFeeds feeds, DateTimeOffset to)
    {
        while (feeds.Status[0].NextPollAt <= time.GetUtcNow())
            await Task.Yield();
        Assert.Equal(to, feeds.Status[0].NextPollAt);
        time.SetUtcNow(to);
    }

    private sealed class FixedSource(params PriceQuote[] quotes) : IPriceSource
    {
        public Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken) =>
            Task.FromResult(new FetchedPrices { Quotes = quotes });
    }

    /// <summary>Records each poll's instant; fails while <see cref="Fail"/> is set.</summary>
    private sealed class ScriptedSource : IPriceSource
    {
        private readonly System.Threading.Channels.Channel<DateTimeOffset> _calls = System.Threading.Channels.Channel.CreateUnbounded<DateTimeOffset>();

        public volatile bool Fail;

        public Task<FetchedPrices> FetchAsync(DateTimeOffset now, DateTimeOffset? since, CancellationToken cancellationToken)
        {
            var fail = Fail;
            _calls.Writer.TryWrite(now);
            return fail ? throw new PriceFeedException("scripted failure") : Task.FromResult(new FetchedPrices());
        }

        public async Task<DateTimeOffset> NextCallAsync(CancellationToken ct) => await _calls.Reader.ReadAsync(ct);
    }
}
