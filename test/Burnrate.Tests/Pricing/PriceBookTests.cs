using Burnrate.Pricing;

namespace Burnrate.Tests.Pricing;

public sealed class PriceBookTests
{
    private static readonly DateTimeOffset s_t0 = Some.Jan1;

    [Fact]
    public void Price_in_force_is_the_latest_at_or_before_the_instant()
    {
        var book = new PriceBook();
        book.Add(Some.Price(10m, s_t0));
        book.Add(Some.Price(12m, s_t0.AddDays(10)));
        book.Add(Some.Price(11m, s_t0.AddDays(5)));

        Assert.Null(Find(book, s_t0.AddTicks(-1)));
        Assert.Equal(10m, Find(book, s_t0)!.PricePerHour);
        Assert.Equal(10m, Find(book, s_t0.AddDays(5).AddTicks(-1))!.PricePerHour);
        Assert.Equal(11m, Find(book, s_t0.AddDays(5))!.PricePerHour);
        Assert.Equal(12m, Find(book, s_t0.AddYears(3))!.PricePerHour);
    }

    [Fact]
    public void Spot_price_in_force_is_the_latest_before_the_instant_and_separate_from_on_demand()
    {
        var book = new PriceBook();
        book.Add(Some.Price(55.04m, s_t0));
        book.Add(Some.Price(18m, s_t0, capacity: CapacityType.Spot));
        book.Add(Some.Price(25m, s_t0.AddHours(6), capacity: CapacityType.Spot));

        Assert.Equal(18m, Find(book, s_t0.AddHours(5), capacity: CapacityType.Spot)!.PricePerHour);
        Assert.Equal(25m, Find(book, s_t0.AddHours(7), capacity: CapacityType.Spot)!.PricePerHour);
        Assert.Equal(55.04m, Find(book, s_t0.AddHours(7))!.PricePerHour);
        Assert.Null(Find(book, s_t0, capacity: CapacityType.Reserved));
    }

    [Fact]
    public void Zone_price_wins_over_the_region_price_and_other_zones_fall_back_to_the_region()
    {
        var book = new PriceBook();
        book.Add(Some.Price(20m, s_t0, capacity: CapacityType.Spot));
        book.Add(Some.Price(16m, s_t0, zone: "use1-az2", capacity: CapacityType.Spot));

        Assert.Equal(16m, Find(book, s_t0, zone: "use1-az2", capacity: CapacityType.Spot)!.PricePerHour);
        Assert.Equal(20m, Find(book, s_t0, zone: "use1-az4", capacity: CapacityType.Spot)!.PricePerHour);
        Assert.Equal(20m, Find(book, s_t0, zone: "", capacity: CapacityType.Spot)!.PricePerHour);
    }

    [Fact]
    public void Zone_without_an_entry_yet_in_force_uses_the_region_until_its_own_starts()
    {
        var book = new PriceBook();
        book.Add(Some.Price(20m, s_t0));
        book.Add(Some.Price(16m, s_t0.AddDays(1), zone: "use1-az2"));

        Assert.Equal(20m, Find(book, s_t0.AddHours(1), zone: "use1-az2")!.PricePerHour);
        Assert.Equal(16m, Find(book, s_t0.AddDays(2), zone: "use1-az2")!.PricePerHour);
    }

    [Fact]
    public void A_price_is_never_taken_from_another_region()
    {
        var book = new PriceBook();
        book.Add(Some.Price(55.04m, s_t0, region: "us-west-2"));

        Assert.Null(Find(book, s_t0.AddDays(1), region: "us-east-1"));
        Assert.Null(Find(book, s_t0.AddDays(1), region: "us-east-1", zone: "us-west-2a"));
    }

    [Fact]
    public void Provider_region_and_instance_type_match_without_regard_to_case()
    {
        var book = new PriceBook();
        book.Add(Some.Price(3.673m, s_t0, provider: "azure", region: "eastus", type: "Standard_NC24ads_A100_v4"));

        var found = book.Find("Azure", "EastUS", "", "standard_nc24ads_a100_v4", CapacityType.OnDemand, s_t0.AddDays(1));
        Assert.Equal(3.673m, found!.PricePerHour);
    }

    [Fact]
    public void A_later_entry_for_the_same_key_and_instant_replaces_the_earlier()
    {
        var book = new PriceBook();
        book.Add(Some.Price(10m, s_t0));
        book.Add(Some.Price(9m, s_t0));
        book.AddRange([Some.Price(8m, s_t0.AddDays(1)), Some.Price(7m, s_t0.AddDays(1))]);

        Assert.Equal(9m, Find(book, s_t0)!.PricePerHour);
        Assert.Equal(7m, Find(book, s_t0.AddDays(1))!.PricePerHour);
        Assert.Equal(2, book.Count);
    }

    [Fact]
    public void Next_change_is_the_first_effective_date_strictly_inside_the_span()
    {
        var book = new PriceBook();
        book.Add(Some.Price(10m, s_t0));
        book.Add(Some.Price(11m, s_t0.AddHours(2)));
        book.Add(Some.Price(12m, s_t0.AddHours(4)));

        Assert.Equal(s_t0.AddHours(2), NextChange(book, s_t0, s_t0.AddHours(5)));
        Assert.Equal(s_t0.AddHours(4), NextChange(book, s_t0.AddHours(2), s_t0.AddHours(5)));
        Assert.Null(NextChange(book, s_t0.AddHours(2), s_t0.AddHours(4)));
        Assert.Null(NextChange(book, s_t0.AddHours(4), s_t0.AddDays(9)));
        Assert.Equal(s_t0, NextChange(book, s_t0.AddHours(-1), s_t0.AddHours(1)));
    }

    [Fact]
    public void Next_change_sees_region_changes_only_where_no_zone_entry_hides_them()
    {
        var book = new PriceBook();
        book.Add(Some.Price(20m, s_t0));
        book.Add(Some.Price(16m, s_t0.AddHours(3), zone: "az1"));
        book.Add(Some.Price(21m, s_t0.AddHours(1)));
        book.Add(Some.Price(22m, s_t0.AddHours(5)));

        // Region changes at 1h, zone takes over at 3h, the region's 5h change is hidden behind the zone entry.
        Assert.Equal(s_t0.AddHours(1), NextChange(book, s_t0, s_t0.AddDays(1), zone: "az1"));
        Assert.Equal(s_t0.AddHours(3), NextChange(book, s_t0.AddHours(1), s_t0.AddDays(1), zone: "az1"));
        Assert.Null(NextChange(book, s_t0.AddHours(3), s_t0.AddDays(1), zone: "az1"));
        Assert.Equal(s_t0.AddHours(5), NextChange(book, s_t0.AddHours(3), s_t0.AddDays(1), zone: "az2"));
    }

    [Fact]
    public void Next_change_is_null_for_an_unknown_key_or_an_empty_span()
    {
        var book = new PriceBook();
        book.Add(Some.Price(10m, s_t0.AddHours(1)));

        Assert.Null(NextChange(book, s_t0, s_t0.AddDays(1), region: "eu-west-1"));
        Assert.Null(NextChange(book, s_t0.AddHours(2), s_t0));
    }

    [Fact]
    public void In_force_gives_one_entry_per_key()
    {
        var book = new PriceBook();
        book.Add(Some.Price(10m, s_t0));
        book.Add(Some.Price(11m, s_t0.AddDays(1)));
        book.Add(Some.Price(5m, s_t0, capacity: CapacityType.Spot));
        book.Add(Some.Price(4m, s_t0, zone: "az1", capacity: CapacityType.Spot));
        book.Add(Some.Price(9m, s_t0.AddDays(30), region: "us-west-2"));

        var inForce = book.InForce(s_t0.AddDays(2));

        Assert.Equal(3, inForce.Count);
        Assert.Contains(inForce, p => p.PricePerHour == 11m);
        Assert.Contains(inForce, p => p.PricePerHour == 5m);
        Assert.Contains(inForce, p => p.PricePerHour == 4m && p.Zone == "az1");
    }

    [Fact]
    public async Task Readers_see_a_whole_price_while_one_writer_adds()
    {
        var book = new PriceBook();
        book.Add(Some.Price(1m, s_t0));
        const int writes = 2_000;
        using var cts = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 3).Select(_ => Task.Run(() =>
        {
            var reads = 0;
            decimal last = 0;
            // At least one read after the writer finished, however the two cores were scheduled.
            do
            {
                var p = Find(book, s_t0.AddYears(10));
                Assert.NotNull(p);
                // Entries are added at increasing instants, so the latest price never goes back.
                Assert.True(p.PricePerHour >= last);
                last = p.PricePerHour;
                reads++;
            }
            while (!cts.IsCancellationRequested);

            return reads;
        })).ToArray();

        for (var i = 2; i <= writes; i++)
            book.Add(Some.Price(i, s_t0.AddMinutes(i)));
        cts.Cancel();
        var reads = await Task.WhenAll(readers);

        Assert.Equal(writes, book.Count);
        Assert.Equal(writes, Find(book, s_t0.AddYears(10))!.PricePerHour);
        Assert.All(reads, r => Assert.True(r > 0));
    }

    private static InstancePrice? Find(PriceBook book, DateTimeOffset at, string zone = "", CapacityType capacity = CapacityType.OnDemand, string region = "us-east-1") =>
        book.Find("aws", region, zone, "p5.48xlarge", capacity, at);

    private static DateTimeOffset? NextChange(PriceBook book, DateTimeOffset after, DateTimeOffset before, string zone = "", string region = "us-east-1") =>
        book.NextChange("aws", region, zone, "p5.48xlarge", CapacityType.OnDemand, after, before);
}
