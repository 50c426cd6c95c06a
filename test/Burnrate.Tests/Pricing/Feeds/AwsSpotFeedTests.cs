using System.Net;
using System.Text.Json.Nodes;
using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Rating;
using Burnrate.Storage;
using Burnrate.Storage.DuckDb;
using Burnrate.Telemetry;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Pricing.Feeds;

/// <summary>The AWS spot feed against a local server answering DescribeSpotPriceHistory in EC2's XML, read by AWSSDK.EC2.</summary>
public sealed class AwsSpotFeedTests
{
    private static PriceFeedOptions Options(PriceApiServer api, string region, params string[] types) => new()
    {
        Name = "aws-spot",
        Kind = PriceFeedKind.AwsSpot,
        Endpoint = api.Url,
        DummyCredentials = true,
        Regions = [region],
        InstanceTypes = types,
    };

    private static PriceApiAnswer Xml(IEnumerable<JsonObject> items, string? next = null) => new(200, SpotTestData.Ec2Xml(items, next), "text/xml");

    [Fact]
    public async Task The_botocore_example_answer_reads_through_AWSSDK_into_spot_prices_per_zone()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => Xml(SpotTestData.AwsExampleItems());
        var options = Options(api, "us-west-1", "m1.xlarge") with { ProductDescriptions = ["Linux/UNIX (Amazon VPC)"] };
        var book = new PriceBook();
        var time = new FakeTimeProvider(Support.Some.Noon);
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), book, time);

        Assert.True(await feed.PollAsync(ct));

        var a = book.Find("aws", "us-west-1", "us-west-1a", "m1.xlarge", CapacityType.Spot, Support.Some.Noon)!;
        Assert.Equal(0.080000m, a.PricePerHour);
        Assert.Equal(new DateTimeOffset(2014, 1, 6, 4, 32, 53, TimeSpan.Zero), a.EffectiveFrom);
        Assert.Equal(("us-west-1a", "feed:aws-spot:Linux/UNIX (Amazon VPC)"), (a.Zone, a.Source));
        var c = book.Find("aws", "us-west-1", "us-west-1c", "m1.xlarge", CapacityType.Spot, Support.Some.Noon)!;
        Assert.Equal(new DateTimeOffset(2014, 1, 5, 11, 28, 26, TimeSpan.Zero), c.EffectiveFrom);
        Assert.Null(book.Find("aws", "us-west-1", "us-west-1b", "m1.xlarge", CapacityType.Spot, Support.Some.Noon));

        // The SDK sent the EC2 Query request with the filters and the start of the window.
        var request = Assert.Single(api.Requests);
        var form = WebUtility.UrlDecode(request.Body);
        Assert.Equal("POST", request.Method);
        Assert.Contains("Action=DescribeSpotPriceHistory", form, StringComparison.Ordinal);
        Assert.Contains("InstanceType.1=m1.xlarge", form, StringComparison.Ordinal);
        Assert.Contains("ProductDescription.1=Linux/UNIX (Amazon VPC)", form, StringComparison.Ordinal);
        Assert.Contains("StartTime=2026-03-02T12:00:00", form, StringComparison.Ordinal);
        Assert.Equal((2, 2L, true), (feed.Status.PricesHeld, feed.Status.BookChanges, feed.Status.Up));
    }

    [Fact]
    public async Task A_second_poll_asks_from_the_last_success_and_writes_nothing_when_nothing_moved()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => Xml(SpotTestData.AwsExampleItems());
        var options = Options(api, "us-west-1") with { ProductDescriptions = ["Linux/UNIX (Amazon VPC)"] };
        var book = new PriceBook();
        var time = new FakeTimeProvider(Support.Some.Noon);
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), book, time);
        Assert.True(await feed.PollAsync(ct));
        var count = book.Count;

        time.Advance(TimeSpan.FromSeconds(60));
        Assert.True(await feed.PollAsync(ct));

        Assert.Equal(count, book.Count);
        Assert.Equal(2L, feed.Status.BookChanges);
        Assert.Contains("StartTime=2026-03-02T12:00:00", WebUtility.UrlDecode(api.Requests.Last().Body), StringComparison.Ordinal);
        Assert.Equal(2L, feed.Status.Polls);
    }

    [Fact]
    public async Task Pages_are_followed_by_NextToken_and_prices_for_other_systems_are_left_out()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        var t = Support.Some.At(11, 0);
        api.Answer = r => WebUtility.UrlDecode(r.Body).Contains("NextToken=page-2", StringComparison.Ordinal)
            ? Xml([SpotTestData.AwsItem("us-east-1b", "p5.48xlarge", "Linux/UNIX", "20.5", t)])
            : Xml([SpotTestData.AwsItem("us-east-1a", "p5.48xlarge", "Linux/UNIX", "19.25", t),
                   SpotTestData.AwsItem("us-east-1a", "p5.48xlarge", "Windows", "99.0", t)], "page-2");
        var options = Options(api, "us-east-1", "p5.48xlarge");
        var book = BuiltInCatalog.Load().ToPriceBook();
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), book, new FakeTimeProvider(Support.Some.Noon));

        Assert.True(await feed.PollAsync(ct));

        Assert.Equal(2, api.Requests.Count);
        Assert.Equal(19.25m, book.Find("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.Spot, Support.Some.Noon)!.PricePerHour);
        var b = book.Find("aws", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.Spot, Support.Some.Noon)!;
        Assert.Equal(20.5m, b.PricePerHour);
        // The GPU split is the catalog's for the instance type: 8 H100s, their share of the price kept.
        var catalog = BuiltInCatalog.Load().ToPriceBook().Find("aws", "us-east-1", "", "p5.48xlarge", CapacityType.Spot, Support.Some.Noon)!;
        Assert.Equal((8, "H100"), (b.GpuCount, b.GpuModel));
        Assert.Equal(decimal.Round(catalog.GpuPricePerHour * 20.5m / catalog.PricePerHour, 9, MidpointRounding.AwayFromZero), b.GpuPricePerHour);
        Assert.Equal(2, feed.Status.PricesHeld);
    }

    [Theory]
    [InlineData(2, 0)]   // AWS dates the change at the start of the next minute
    [InlineData(0, 30)]  // the change is dated inside a minute already rated: it counts from the next minute rated
    public async Task A_spot_price_change_served_is_in_force_for_the_next_minute_rated(int changeMinute, int changeSecond)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        var items = new List<JsonObject> { SpotTestData.AwsItem("us-east-1a", "p5.48xlarge", "Linux/UNIX", "18.000000", Support.Some.At(11, 50)) };
        api.Answer = _ => Xml(items);
        var time = new FakeTimeProvider(Support.Some.At(11, 59, 30));
        var catalog = BuiltInCatalog.Load();
        var book = catalog.ToPriceBook();
        var options = Options(api, "us-east-1", "p5.48xlarge");
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), book, time);
        await using var store = await DuckDbCostStore.OpenAsync(":memory:", ct: ct);
        using var pipeline = new CostPipeline(new RatingEngine(book, catalog.RateCard), store, new RatingOptions { Grace = TimeSpan.Zero });
        Assert.True(await feed.PollAsync(ct));
        pipeline.Apply([new NodeStarted(Support.Some.At(12, 0), new NodeSpec("i-spot", "aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.Spot, 8, "H100"))]);
        time.SetUtcNow(Support.Some.At(12, 2));
        Assert.Equal(2, await pipeline.RateClosedMinutesAsync(Support.Some.At(12, 2), ct));

        items.Add(SpotTestData.AwsItem("us-east-1a", "p5.48xlarge", "Linux/UNIX", "24.000000", Support.Some.At(12, changeMinute, changeSecond)));
        time.SetUtcNow(Support.Some.At(12, 2, 5));
        Assert.True(await feed.PollAsync(ct));
        time.SetUtcNow(Support.Some.At(12, 3));
        Assert.Equal(1, await pipeline.RateClosedMinutesAsync(Support.Some.At(12, 3), ct));

        var minutes = await store.QueryCostsAsync(new CostQuery { From = Support.Some.At(12, 0), To = Support.Some.At(12, 3), Step = TimeSpan.FromMinutes(1) }, ct);
        // $18/h is $0.30 a minute; $24/h is $0.40: the minute rated after the change, and only it, is at the new price.
        Assert.Equal([Money.FromDollars(0.30m), Money.FromDollars(0.30m), Money.FromDollars(0.40m)], minutes.OrderBy(m => m.BucketStart).Select(m => m.Cost));
    }

    [Fact]
    public async Task An_EC2_error_answer_fails_the_poll_with_the_error_and_keeps_the_last_good_price()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => Xml([SpotTestData.AwsItem("us-east-1a", "p5.48xlarge", "Linux/UNIX", "18.5", Support.Some.At(11, 0))]);
        var time = new FakeTimeProvider(Support.Some.Noon);
        var book = new PriceBook();
        var options = Options(api, "us-east-1");
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), book, time);
        Assert.True(await feed.PollAsync(ct));

        api.Answer = _ => new PriceApiAnswer(503, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>Unavailable</Code><Message>The service is unavailable. Please try again shortly.</Message></Error></Errors><RequestID>req-1</RequestID></Response>", "text/xml");
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.False(await feed.PollAsync(ct));

        var status = feed.Status;
        Assert.Contains("503", status.LastError, StringComparison.Ordinal);
        Assert.Contains("Unavailable", status.LastError, StringComparison.Ordinal);
        Assert.Equal((false, 1, Support.Some.Noon), (status.Up, status.ConsecutiveFailures, status.LastSuccessAt!.Value));
        Assert.Equal(18.5m, book.Find("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.Spot, time.GetUtcNow())!.PricePerHour);
    }

    [Fact]
    public async Task A_poll_that_outlives_its_timeout_on_the_feed_clock_fails_and_is_retried()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => null; // never answers
        var time = new FakeTimeProvider(Support.Some.Noon);
        var options = Options(api, "us-east-1") with { Timeout = TimeSpan.FromSeconds(30) };
        using var feed = new PriceFeed(options, new AwsSpotPriceSource(options), new PriceBook(), time);

        var poll = feed.PollAsync(ct);
        time.Advance(TimeSpan.FromSeconds(30));

        Assert.False(await poll);
        Assert.Equal("timed out after 30s", feed.Status.LastError);
        Assert.Equal(Support.Some.Noon + options.Interval, feed.Status.NextPollAt);
    }
}
