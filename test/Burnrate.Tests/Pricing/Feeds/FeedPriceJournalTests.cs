using Burnrate.Inventory;
using Burnrate.Pricing;
using Burnrate.Pricing.Feeds;
using Burnrate.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Burnrate.Tests.Pricing.Feeds;

/// <summary>What feeds put in the book survives a restart: <see cref="FeedPriceJournal"/>.</summary>
public sealed class FeedPriceJournalTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("burnrate-feed-journal-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    private string JournalPath => Path.Combine(_directory, "prices", "feeds.jsonl");

    private static DateTimeOffset At(int day, int hour) => new(2026, 11, day, hour, 0, 0, TimeSpan.Zero);

    private static InstancePrice Spot(string zone, decimal price, DateTimeOffset from) =>
        new("aws", "us-east-1", zone, "p5.48xlarge", CapacityType.Spot, price, decimal.Round(price / 8m, 9), 8, "H100", 192, 2048m, from, "feed:aws-spot:Linux/UNIX");

    [Fact]
    public void Entries_come_back_exactly_after_a_restart_and_the_file_keeps_only_what_can_still_matter()
    {
        using (var journal = FeedPriceJournal.Open(JournalPath, new PriceBook(), At(1, 0), TimeSpan.FromDays(1)))
        {
            Assert.Equal(0, journal.Restored);
            journal.Add(Spot("us-east-1a", 30.5m, At(1, 0)));
            journal.Add(Spot("us-east-1a", 31.25m, At(2, 0)));
            journal.Add(Spot("us-east-1a", 29.875000m, At(3, 12))); // the scale is kept: 29.875000
            journal.Add(Spot("us-east-1b", 28m, At(1, 6)));
        }

        // Four days later, keeping a day: 1a's entry of the 3rd is the one in force when the kept day begins (kept,
        // the two before it are not), 1b's only entry likewise.
        var book = new PriceBook();
        using var restarted = FeedPriceJournal.Open(JournalPath, book, At(5, 0), TimeSpan.FromDays(1));

        Assert.Equal(2, restarted.Restored);
        var a = book.Find("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.Spot, At(5, 0))!;
        Assert.Equal(Spot("us-east-1a", 29.875000m, At(3, 12)), a);
        Assert.Equal("29.875000", a.PricePerHour.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(28m, book.Find("aws", "us-east-1", "us-east-1b", "p5.48xlarge", CapacityType.Spot, At(5, 0))!.PricePerHour);
        Assert.Equal(2, File.ReadAllLines(JournalPath).Length);
    }

    [Fact]
    public void A_line_cut_short_by_a_crash_is_skipped_and_counted_and_the_rest_restored()
    {
        using (var journal = FeedPriceJournal.Open(JournalPath, new PriceBook(), At(1, 0), TimeSpan.FromDays(1)))
            journal.Add(Spot("us-east-1a", 30.5m, At(1, 0)));
        File.AppendAllText(JournalPath, "{\"provider\":\"aws\",\"region\":\"us-ea");

        var book = new PriceBook();
        using var restarted = FeedPriceJournal.Open(JournalPath, book, At(1, 1), TimeSpan.FromDays(1));

        Assert.Equal((1, 1), (restarted.Restored, restarted.Unreadable));
        Assert.Equal(30.5m, book.Find("aws", "us-east-1", "us-east-1a", "p5.48xlarge", CapacityType.Spot, At(1, 1))!.PricePerHour);
        restarted.Add(Spot("us-east-1a", 31m, At(1, 1)));
        Assert.Equal(2, File.ReadAllLines(JournalPath).Length); // the torn line is gone, the new one is a line of its own
    }

    [Fact]
    public async Task A_feed_failing_after_a_restart_keeps_the_price_it_had_before_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var api = await PriceApiServer.StartAsync();
        api.Answer = _ => new PriceApiAnswer(200, SpotTestData.Read("azure/standard_d2s_v3_eastus.json"));
        var options = new PriceFeedOptions
        {
            Name = "azure-eastus",
            Kind = PriceFeedKind.AzureRetail,
            Endpoint = new Uri(api.Url, "api/retail/prices"),
            Regions = ["eastus"],
            InstanceTypes = ["Standard_D2s_v3"],
        };
        using var http = new HttpClient();
        var catalog = BuiltInCatalog.Load();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 2, 12, 0, 0, TimeSpan.Zero));
        var fromCatalog = catalog.ToPriceBook().Find("azure", "eastus", "", "Standard_D2s_v3", CapacityType.Spot, time.GetUtcNow());

        // First run: one good poll, through the journal.
        using (var journal = FeedPriceJournal.Open(JournalPath, catalog.ToPriceBook(), time.GetUtcNow(), TimeSpan.FromDays(1)))
        {
            using var feeds = new PriceFeeds([new PriceFeed(options, new AzureRetailPriceSource(options, http), journal, time)], time);
            Assert.Equal(1, await feeds.PollDueAsync(ct));
        }

        // Restart with the API down: the book starts from the catalog and the journal, and the poll fails.
        api.Answer = _ => new PriceApiAnswer(500, "{\"error\":{\"code\":\"InternalServerError\"}}");
        time.Advance(TimeSpan.FromMinutes(5));
        var book = catalog.ToPriceBook();
        using var restarted = FeedPriceJournal.Open(JournalPath, book, time.GetUtcNow(), TimeSpan.FromDays(1));
        using var again = new PriceFeeds([new PriceFeed(options, new AzureRetailPriceSource(options, http), restarted, time)], time);
        Assert.Equal(1, await again.PollDueAsync(ct));

        var spot = book.Find("azure", "eastus", "", "Standard_D2s_v3", CapacityType.Spot, time.GetUtcNow())!;
        Assert.Equal(0.018816m, spot.PricePerHour); // the captured answer's spot price, not the catalog's
        Assert.NotEqual(fromCatalog?.PricePerHour, spot.PricePerHour);
        Assert.StartsWith("feed:azure-eastus", spot.Source, StringComparison.Ordinal);
    }
}
